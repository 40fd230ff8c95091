//! A raw paho MQTT 5 client, for requests our own `ask` would never send.

use std::time::Duration;

use paho_mqtt as paho;

use super::Broker;

/// A connected client subscribed to its own response topic.
pub struct RawClient {
    pub client: paho::AsyncClient,
    pub rx: paho::SyncReceiver<Option<paho::Message>>,
    pub response_topic: String,
}

/// A reply as received: payload, content type, correlation data.
#[derive(Debug, Clone)]
pub struct RawReply {
    pub payload: Vec<u8>,
    pub content_type: Option<String>,
    pub correlation: Option<Vec<u8>>,
}

impl RawClient {
    /// Connects with client id `id` and subscribes to `<prefix>/v1/resp/<id>`.
    pub fn connect(broker: &Broker, prefix: &str, id: &str) -> RawClient {
        let (client, rx, response_topic) = connect_subscribed(broker, prefix, id);
        RawClient {
            client,
            rx,
            response_topic,
        }
    }

    /// Publishes `payload` to `topic` with the given properties.
    pub fn send(
        &self,
        topic: &str,
        payload: &[u8],
        content_type: Option<&str>,
        correlation: Option<&[u8]>,
        response_topic: Option<&str>,
    ) {
        let mut props = paho::Properties::new();
        if let Some(rt) = response_topic {
            props
                .push_string(paho::PropertyCode::ResponseTopic, rt)
                .unwrap();
        }
        if let Some(c) = correlation {
            props
                .push_binary(paho::PropertyCode::CorrelationData, c.to_vec())
                .unwrap();
        }
        if let Some(ct) = content_type {
            props
                .push_string(paho::PropertyCode::ContentType, ct)
                .unwrap();
        }
        let msg = paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(1)
            .properties(props)
            .finalize();
        self.client.publish(msg).wait().expect("raw publish");
    }

    /// Sends a request to `<prefix>/v1/req/<op>` and waits for one reply.
    pub fn request(
        &self,
        prefix: &str,
        op: &str,
        payload: &[u8],
        content_type: Option<&str>,
        correlation: Option<&[u8]>,
    ) -> RawReply {
        let topic = format!("{prefix}/v1/req/{op}");
        let rt = self.response_topic.clone();
        self.send(&topic, payload, content_type, correlation, Some(&rt));
        self.next(Duration::from_secs(10))
            .expect("a reply within 10 s")
    }

    /// The next message on the response topic, if one comes in time.
    pub fn next(&self, within: Duration) -> Option<RawReply> {
        let msg = self.rx.recv_timeout(within).ok()??;
        let props = msg.properties();
        Some(RawReply {
            payload: msg.payload().to_vec(),
            content_type: props.get_string(paho::PropertyCode::ContentType),
            correlation: props.get_binary(paho::PropertyCode::CorrelationData),
        })
    }
}

impl RawReply {
    /// `"ok"` for a value, else the error code, whatever the encoding.
    pub fn code(&self) -> String {
        use mqttapp::protocol::{decode_reply, Encoding, Reply};
        let encoding = Encoding::detect(self.content_type.as_deref(), &self.payload);
        match decode_reply(encoding, &self.payload) {
            Ok(Reply::Ok(_)) => "ok".to_string(),
            Ok(Reply::Err(e)) => e.code,
            Err(e) => format!("undecodable reply: {e}"),
        }
    }

    /// The reply as text, for failure messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload)
            .chars()
            .take(300)
            .collect()
    }
}

/// A paho client (the project's client options, see `mqtt::create_client`)
/// connected with a clean start as `id` and subscribed (QoS 1) to
/// `<prefix>/v1/resp/<id>`: the client, its message channel, the topic.
pub fn connect_subscribed(
    broker: &Broker,
    prefix: &str,
    id: &str,
) -> (
    paho::AsyncClient,
    paho::SyncReceiver<Option<paho::Message>>,
    String,
) {
    let uri = mqttapp::mqtt::BrokerUri::parse(&broker.url()).expect("broker url");
    let client = mqttapp::mqtt::create_client(&uri, id, false).expect("create paho client");
    let rx = client.start_consuming();
    let opts = paho::ConnectOptionsBuilder::new_v5()
        .clean_start(true)
        .connect_timeout(Duration::from_secs(20))
        .finalize();
    client
        .connect(opts)
        .wait_for(Duration::from_secs(30))
        .expect("paho client connects");
    let response_topic = format!("{prefix}/v1/resp/{id}");
    client
        .subscribe(&response_topic, 1)
        .wait_for(Duration::from_secs(30))
        .expect("paho client subscribes");
    (client, rx, response_topic)
}
