//! JSON text for TL values (feature `json`): a request written as JSON —
//! `{"_": "contacts.resolveUsername", "username": "alice"}`, fields by their TL names — becomes a
//! [`crate::functions::Request`] through serde, and [`crate::functions::Request::result_json`]
//! turns a result's bytes back into JSON. `mtcall invoke` uses both.

use serde::Serialize;

use crate::Decode;

/// Decodes `bytes` as `T` and renders it as JSON.
pub fn result<T: Decode + Serialize>(bytes: &[u8]) -> Result<serde_json::Value, String> {
    let value = T::from_bytes(bytes).map_err(|e| format!("the result does not decode: {e}"))?;
    serde_json::to_value(&value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use crate::functions::Request;
    use crate::{Encode, Layer};

    #[test]
    fn requests_from_json_and_results_to_json() {
        let r: Request =
            serde_json::from_str(r#"{"_": "contacts.resolveUsername", "username": "alice"}"#)
                .unwrap();
        assert_eq!(r.name(), "contacts.resolveUsername");
        let bytes = r.to_bytes(Layer::LATEST);
        assert_eq!(&bytes[..4], &0x725afbbcu32.to_le_bytes());
        let received: Request = serde_json::from_str(r#"{"_": "phone.receivedCall", "peer": {"_": "inputPhoneCall", "id": 1, "access_hash": 2}}"#).unwrap();
        assert_eq!(
            received.result_json(&true.to_bytes(Layer::LATEST)).unwrap(),
            serde_json::json!(true)
        );
        assert!(serde_json::from_str::<Request>(r#"{"_": "no.suchMethod"}"#).is_err());
    }
}
