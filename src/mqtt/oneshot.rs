//! Short-lived clients (`status`, `doctor`, `dlq replay`): connect, read
//! what arrives in a loop of their own, publish and wait for the
//! acknowledgement. The server and the client pipeline, which never block
//! on a single message, do not use these.

use std::time::Duration;

use crossbeam_channel::Receiver;

use super::transport::{Arrival, Client, Connect, DeliveryError, Message};
use super::{MqttError, SessionSpec};
use crate::config::Connection;

impl Client {
    /// A connected short-lived client: clean start, no session kept, no
    /// will.
    ///
    /// # Errors
    /// The classified [`MqttError`].
    pub fn connect_oneshot(
        connection: &Connection,
        client_id: &str,
        connect_timeout: Duration,
    ) -> Result<Client, MqttError> {
        let client = Client::create(&connection.broker, client_id, false)?;
        client.connect(&Connect {
            connection,
            session: SessionSpec {
                clean_start: true,
                session_expiry: Duration::ZERO,
                will: None,
                connect_timeout,
            },
        })?;
        Ok(client)
    }

    /// Every arrival from now on, in a channel the caller reads at its own
    /// pace (it replaces any handler). Set it before connecting to see a
    /// resumed session's queued messages.
    pub fn arrivals(&self) -> Receiver<Arrival> {
        let (tx, rx) = crossbeam_channel::unbounded();
        self.set_handler(move |arrival| {
            // The reader has gone: nobody wants the rest.
            let _ = tx.send(arrival);
        });
        rx
    }

    /// Publishes `msg` and waits up to `timeout` for its acknowledgement.
    ///
    /// # Errors
    /// The broker's refusal naming the topic, or a client error (a
    /// timeout among them).
    pub fn publish_wait(&self, msg: Message, timeout: Duration) -> Result<(), MqttError> {
        match self.publish(msg) {
            Ok(delivery) => delivery.wait(timeout).map_err(DeliveryError::into_mqtt),
            Err(refused) => Err(refused.0.into_mqtt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::{block_on, twin, MessageMeta, Subscription};

    fn session() -> SessionSpec {
        SessionSpec {
            clean_start: true,
            session_expiry: Duration::ZERO,
            will: None,
            connect_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn arrivals_carry_retained_and_live_messages_and_each_filter_has_its_outcome() {
        let broker = twin::Broker::new();
        broker.publish(Message::new(
            "p/v1/status/a",
            b"online".to_vec(),
            MessageMeta::default(),
            true,
        ));
        let twin_client = broker.client("reader");
        let client = Client::Twin(twin_client.clone());
        let rx = client.arrivals();
        twin_client.connect(&session()).unwrap();
        let subs = ["p/v1/status/+", "p/v1/resp/reader"].map(|f| Subscription {
            filter: f.into(),
            qos: 1,
            retained_only_if_new: false,
        });
        let granted = block_on(client.subscribe_each(&subs), Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(granted.len(), 2);
        assert!(granted.iter().all(Result::is_ok));
        let marker = Message::new(
            "p/v1/resp/reader",
            Vec::new(),
            MessageMeta::default(),
            false,
        );
        client.publish_wait(marker, Duration::from_secs(1)).unwrap();
        let topics: Vec<String> = rx
            .try_iter()
            .filter_map(|a| match a {
                Arrival::Message(m) => Some(m.topic),
                _ => None,
            })
            .collect();
        assert_eq!(topics, ["p/v1/status/a", "p/v1/resp/reader"]);
    }
}
