//! The two Rust streams of a client, which Python reads with `async for` (each a
//! `RustStream`: items in batches, backpressure, dropped on its runtime when Python stops):
//!
//! - [`messages`]: pub/sub on a connection of its own. It yields one confirmation per channel
//!   first (`{"type": "subscribe", "channel": b"...", "data": <subscriptions>}`, as redis-py's
//!   `listen()` does), then every message (`{"type": "message", "channel": ..., "data": ...}`)
//!   in the order the server sent them. Dropping the stream (`aclose()`, `async with`, a
//!   cancelled reader) closes that connection; if the server closes it, the stream ends with a
//!   `RustError` of kind `connection_dropped`.
//! - [`scan`]: the keys matching a pattern, one SCAN round trip per batch of keys.

use std::collections::VecDeque;
use std::pin::Pin;

use asyncffi::{Stream, Value};
use redis::aio::ConnectionManager;

use crate::arg::Arg;
use crate::error::Error;

type Messages = Pin<Box<dyn Stream<Item = redis::Msg> + Send>>;

enum Subscription {
    /// Not connected yet.
    Start(redis::Client, Vec<Arg>),
    /// Confirmations still to yield, then the messages.
    Confirming(VecDeque<Value>, Messages),
    Reading(Messages),
    Done,
}

fn item(kind: &str, channel: Vec<u8>, data: Value) -> Value {
    Value::Dict(vec![
        ("type".into(), Value::Str(kind.into())),
        ("channel".into(), Value::Bytes(channel)),
        ("data".into(), data),
    ])
}

async fn open(client: redis::Client, channels: Vec<Arg>) -> Result<Subscription, Error> {
    if channels.is_empty() {
        return Err(Error::Own(
            "value",
            "subscribe needs at least one channel".into(),
        ));
    }
    let mut pubsub = client.get_async_pubsub().await?;
    let mut confirmations = VecDeque::with_capacity(channels.len());
    for (n, channel) in channels.into_iter().enumerate() {
        pubsub.subscribe(&channel).await?;
        confirmations.push_back(item("subscribe", channel.0, Value::Int(n as i64 + 1)));
    }
    Ok(Subscription::Confirming(
        confirmations,
        Box::pin(pubsub.into_on_message()),
    ))
}

/// The messages published on `channels` (see the module's docs).
pub fn messages(
    client: redis::Client,
    channels: Vec<Arg>,
) -> impl Stream<Item = Result<Value, Error>> + Send + 'static {
    asyncffi::stream::unfold(Subscription::Start(client, channels), |state| async move {
        let mut messages = match state {
            Subscription::Start(client, channels) => match open(client, channels).await {
                Ok(Subscription::Confirming(mut confirmations, messages)) => {
                    let first = confirmations.pop_front()?;
                    return Some((Ok(first), Subscription::Confirming(confirmations, messages)));
                }
                Ok(_) => return None,
                Err(e) => return Some((Err(e), Subscription::Done)),
            },
            Subscription::Confirming(mut confirmations, messages) => {
                if let Some(next) = confirmations.pop_front() {
                    return Some((Ok(next), Subscription::Confirming(confirmations, messages)));
                }
                messages
            }
            Subscription::Reading(messages) => messages,
            Subscription::Done => return None,
        };
        match asyncffi::stream::next(&mut messages).await {
            Some(msg) => {
                let channel = msg.get_channel::<Vec<u8>>().unwrap_or_default();
                let data = Value::Bytes(msg.get_payload_bytes().to_vec());
                Some((
                    Ok(item("message", channel, data)),
                    Subscription::Reading(messages),
                ))
            }
            None => Some((
                Err(Error::Own(
                    "connection_dropped",
                    "the pub/sub connection was closed by the server".into(),
                )),
                Subscription::Done,
            )),
        }
    })
}

struct Scan {
    conn: Option<ConnectionManager>,
    cursor: u64,
    keys: VecDeque<Vec<u8>>,
    started: bool,
}

/// The keys matching `pattern` (every key if `None`), by SCAN with `count` as its hint. As
/// SCAN itself: a key present for the whole iteration is returned at least once.
pub fn scan(
    conn: Result<ConnectionManager, Error>,
    pattern: Option<String>,
    count: Option<u32>,
) -> impl Stream<Item = Result<Vec<u8>, Error>> + Send + 'static {
    let state = conn.map(|conn| Scan {
        conn: Some(conn),
        cursor: 0,
        keys: VecDeque::new(),
        started: false,
    });
    asyncffi::stream::unfold(Some(state), move |state| {
        let pattern = pattern.clone();
        async move {
            let mut scan = match state? {
                Ok(scan) => scan,
                Err(e) => return Some((Err(e), None)),
            };
            loop {
                if let Some(key) = scan.keys.pop_front() {
                    return Some((Ok(key), Some(Ok(scan))));
                }
                if scan.started && scan.cursor == 0 {
                    return None;
                }
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(scan.cursor);
                if let Some(p) = &pattern {
                    cmd.arg("MATCH").arg(p);
                }
                if let Some(c) = count {
                    cmd.arg("COUNT").arg(c);
                }
                let conn = scan.conn.as_mut()?;
                match cmd.query_async::<(u64, Vec<Vec<u8>>)>(conn).await {
                    Ok((cursor, keys)) => {
                        scan.started = true;
                        scan.cursor = cursor;
                        scan.keys.extend(keys);
                    }
                    Err(e) => return Some((Err(e.into()), None)),
                }
            }
        }
    })
}
