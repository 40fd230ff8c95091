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
}

impl MessageMeta {
    /// Reads the properties of a received message.
    pub(super) fn of(msg: &paho::Message) -> MessageMeta {
        let props = msg.properties();
        MessageMeta {
            response_topic: props.get_string(paho::PropertyCode::ResponseTopic),
            correlation: props.get_binary(paho::PropertyCode::CorrelationData),
            content_type: props.get_string(paho::PropertyCode::ContentType),
            expiry_secs: props.get_val::<u32>(paho::PropertyCode::MessageExpiryInterval),
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
        paho::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(qos)
            .retained(retained)
            .properties(props)
            .finalize()
    }
}
