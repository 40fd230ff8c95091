//! The broker saying no to a publish or a subscription (MQTT 5 reason
//! codes in PUBACK and SUBACK), turned into errors that name the topic.

use paho_mqtt as paho;

use super::MqttError;

/// Classifies a failed publish or subscribe to `topic`: with MQTT 5 a
/// refused QoS 1 publish comes back as a PUBACK reason code, a refused
/// subscription as a SUBACK reason code (Mosquitto's ACL answers 0x87 Not
/// authorized), which paho reports as [`paho::Error::ReasonCode`].
pub fn classify_refusal(topic: &str, err: paho::Error) -> MqttError {
    match err {
        paho::Error::ReasonCode(rc, _) => refused(topic, rc),
        other => MqttError::Client(other),
    }
}

/// Checks the SUBACK codes of a subscription to `filters`: a code of 0x80
/// or more is a refusal (0x87: the ACL does not allow the filter).
///
/// # Errors
/// [`MqttError::NotAuthorized`] or [`MqttError::Refused`] naming the filter.
pub fn check_granted(filters: &[String], codes: &[i32]) -> Result<(), MqttError> {
    match filters.iter().zip(codes).find(|(_, c)| **c >= 0x80) {
        Some((filter, &code)) => {
            let rc = paho::ReasonCode::from(u32::try_from(code).unwrap_or(0x80));
            Err(refused(filter, rc))
        }
        None => Ok(()),
    }
}

fn refused(topic: &str, rc: paho::ReasonCode) -> MqttError {
    let (topic, reason) = (topic.to_string(), rc.to_string());
    match rc {
        paho::ReasonCode::NotAuthorized => MqttError::NotAuthorized { topic, reason },
        _ => MqttError::Refused { topic, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suback_codes_of_0x80_and_more_are_refusals_naming_the_filter() {
        let filters = ["a/resp/c".to_string(), "a/status/+".to_string()];
        assert!(check_granted(&filters, &[1, 0]).is_ok());
        match check_granted(&filters, &[1, 0x87]) {
            Err(MqttError::NotAuthorized { topic, .. }) => assert_eq!(topic, "a/status/+"),
            other => panic!("{other:?}"),
        }
        match check_granted(&filters, &[0x97, 1]) {
            Err(MqttError::Refused { topic, reason }) => {
                assert_eq!(topic, "a/resp/c");
                assert!(reason.contains("uota"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_puback_not_authorized_is_an_acl_refusal() {
        let err = paho::Error::ReasonCode(paho::ReasonCode::NotAuthorized, paho::Properties::new());
        assert!(matches!(
            classify_refusal("p/v1/req/edit", err),
            MqttError::NotAuthorized { topic, .. } if topic == "p/v1/req/edit"
        ));
    }
}
