//! Security events as one JSON line each on the `audit` tracing target
//! (sign-in ok/failed, sign-out, session revoked). Never carries a secret:
//! no passwords, codes, session ids or cookie values.

use serde_json::{json, Value};

pub fn event(kind: &str, fields: Value) {
    let mut line =
        json!({ "event": kind, "ts": crate::clock::Clock::now(&crate::clock::SystemClock) });
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    tracing::info!(target: "audit", "{line}");
}
