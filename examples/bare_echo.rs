//! A bare paho echo responder: receive a request, publish its payload back
//! to the Response Topic with the same Correlation Data, nothing else.
//!
//! It is the performance ceiling for `mqttapp serve` on the same broker:
//! `make bench` runs both under the same load and reports the ratio.
//!
//! ```text
//! cargo run --release --example bare_echo -- mqtt://127.0.0.1:1883 mqttapp
//! ```

use std::time::Duration;

use paho_mqtt as paho;

fn main() -> Result<(), paho::Error> {
    let mut args = std::env::args().skip(1);
    let uri = args
        .next()
        .unwrap_or_else(|| "tcp://127.0.0.1:1883".to_string())
        .replace("mqtt://", "tcp://");
    let prefix = args.next().unwrap_or_else(|| "mqttapp".to_string());
    let client = paho::CreateOptionsBuilder::new()
        .server_uri(uri)
        .client_id(format!("bare-echo-{}", std::process::id()))
        .persistence(paho::PersistenceType::None)
        .mqtt_version(paho::MQTT_VERSION_5)
        .max_buffered_messages(100_000)
        .create_client()?;
    let rx = client.start_consuming();
    let opts = paho::ConnectOptionsBuilder::new_v5()
        .clean_start(true)
        .keep_alive_interval(Duration::from_secs(20))
        .finalize();
    client.connect(opts).wait()?;
    client.subscribe(format!("{prefix}/v1/req/+"), 1).wait()?;
    eprintln!("bare echo serving {prefix}/v1/req/+");
    for msg in rx.iter() {
        let Some(msg) = msg else { break };
        let props = msg.properties();
        let Some(reply_to) = props.get_string(paho::PropertyCode::ResponseTopic) else {
            continue;
        };
        let mut reply_props = paho::Properties::new();
        if let Some(corr) = props.get_binary(paho::PropertyCode::CorrelationData) {
            reply_props.push_binary(paho::PropertyCode::CorrelationData, corr)?;
        }
        let reply = paho::MessageBuilder::new()
            .topic(reply_to)
            .payload(msg.payload())
            .qos(1)
            .properties(reply_props)
            .finalize();
        // Nothing else: the delivery token is not checked (mqttapp serve
        // checks every one; this is the ceiling without that work).
        drop(publish(&client, reply)?);
    }
    Ok(())
}

/// paho refuses a publish with "max buffered messages" (-12) while its
/// queue is full; a fair reference waits instead of dropping the reply.
fn publish(
    client: &paho::AsyncClient,
    mut msg: paho::Message,
) -> Result<paho::DeliveryToken, paho::Error> {
    loop {
        match client.try_publish(msg) {
            Err(paho::Error::Publish(-12, back)) => {
                msg = back;
                std::thread::sleep(Duration::from_micros(200));
            }
            other => return other,
        }
    }
}
