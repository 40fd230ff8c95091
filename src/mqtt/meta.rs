//! The MQTT 5 properties of requests and replies.

use paho_mqtt as paho;

/// The MQTT 5 properties a request or reply carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageMeta {
    /// Where the reply goes.
    pub response_topic: Option<String>,
    /// Copied unchanged from request to reply.
    pub correlation: Option<Vec<u8>>,
    /// Payload encoding.
    pub content_type: Option<String>,
    /// Seconds the message stays valid.
    pub expiry_secs: Option<u32>,
    /// MQTT 5 user properties, in order (names may repeat): a client's own
    /// key/value pairs on requests, the server's id and time breakdown on
    /// replies (docs/PROTOCOL.md, "User properties").
    pub user: Vec<(String, String)>,
}

impl MessageMeta {
    /// The value of the first user property named `key`.
    pub fn user_property(&self, key: &str) -> Option<&str> {
        self.user
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the properties of a received message.
    pub(super) fn of(msg: &paho::Message) -> MessageMeta {
        let props = msg.properties();
        MessageMeta {
            response_topic: props.get_string(paho::PropertyCode::ResponseTopic),
            correlation: props.get_binary(paho::PropertyCode::CorrelationData),
            content_type: props.get_string(paho::PropertyCode::ContentType),
            expiry_secs: props.get_val::<u32>(paho::PropertyCode::MessageExpiryInterval),
            user: props.user_iter().collect(),
        }
    }

    /// Builds a message with QoS `qos` carrying these properties.
    ///
    /// Property values come from received messages or our own settings;
    /// paho refuses only wrongly typed properties, which cannot happen here.
    pub(super) fn message_qos(
        &self,
        topic: &str,
        payload: Vec<u8>,
        retained: bool,
        qos: i32,
    ) -> paho::Message {
        let mut props = paho::Properties::new();
        let typed = "property types match their codes";
        if let Some(t) = &self.response_topic {
            props
                .push_string(paho::PropertyCode::ResponseTopic, t)
                .expect(typed);
        }
        if let Some(c) = &self.correlation {
            props
                .push_binary(paho::PropertyCode::CorrelationData, c.clone())
                .expect(typed);
        }
        if let Some(ct) = &self.content_type {
            props
                .push_string(paho::PropertyCode::ContentType, ct)
                .expect(typed);
        }
        if let Some(secs) = self.expiry_secs {
            props
                .push_u32(paho::PropertyCode::MessageExpiryInterval, secs)
                .expect(typed);
        }
        for (key, value) in &self.user {
            props
                .push_string_pair(paho::PropertyCode::UserProperty, key, value)
                .expect(typed);
        }
        paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(qos)
            .retained(retained)
            .properties(props)
            .finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::MessageMeta;

    #[test]
    fn every_property_survives_the_paho_message() {
        let meta = MessageMeta {
            response_topic: Some("p/v1/resp/c".into()),
            correlation: Some(vec![1, 2, 3]),
            content_type: Some("application/cbor".into()),
            expiry_secs: Some(30),
            user: vec![
                ("k".into(), "v".into()),
                ("k".into(), "again".into()),
                ("traceparent".into(), "00-ab-cd-01".into()),
            ],
        };
        let msg = meta.message_qos("p/v1/req/echo", b"x".to_vec(), false, 1);
        let back = MessageMeta::of(&msg);
        assert_eq!(back, meta);
        assert_eq!(back.user_property("k"), Some("v"));
        assert_eq!(back.user_property("missing"), None);
    }
}
