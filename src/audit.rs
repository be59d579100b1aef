//! Security events as one JSON line each on the `audit` tracing target
//! (sign-in ok/failed, sign-out, session revoked). Never carries a secret:
//! no passwords, codes, session ids or cookie values. Each line's `ts` (Unix
//! seconds) is read from the clock it is given (`App::audit` uses the gateway's).

use serde_json::{json, Value};

use crate::clock::Clock;

pub fn event(clock: &dyn Clock, kind: &str, fields: Value) {
    let mut line = json!({ "event": kind, "ts": clock.now() });
    if let (Some(obj), Value::Object(extra)) = (line.as_object_mut(), fields) {
        obj.extend(extra);
    }
    tracing::info!(target: "audit", "{line}");
}
