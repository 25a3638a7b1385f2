//! Reading requests, one way for every route: identifiers named in a path,
//! a query string or a body, and query strings. A malformed identifier is
//! refused with `M_INVALID_PARAM` naming the field; a query string is
//! decoded the same way everywhere (`+` is a space, then percent-decoding,
//! of names and values alike).

use ruma::{
    IdParseError, OwnedEventId, OwnedRoomAliasId, OwnedRoomId, OwnedServerName, OwnedUserId,
};

use crate::{
    error::{Error, Result},
    http_util::percent_decode,
};

/// An identifier type requests name, and what to call it in an error.
pub trait Id: for<'a> TryFrom<&'a str, Error = IdParseError> {
    const WHAT: &'static str;
}

impl Id for OwnedRoomId {
    const WHAT: &'static str = "room ID";
}
impl Id for OwnedUserId {
    const WHAT: &'static str = "user ID";
}
impl Id for OwnedEventId {
    const WHAT: &'static str = "event ID";
}
impl Id for OwnedServerName {
    const WHAT: &'static str = "server name";
}
impl Id for OwnedRoomAliasId {
    const WHAT: &'static str = "room alias";
}

/// `text` (as it arrived: percent-encoded in a path) as an identifier;
/// `field` names it in the error.
pub fn id<T: Id>(field: &str, text: &str) -> Result<T> {
    let decoded = percent_decode(text);
    parsed(field, &decoded)
}

/// The `{roomId}` of a path.
pub fn room_id(segment: &str) -> Result<OwnedRoomId> {
    id("roomId", segment)
}

/// The `{userId}` of a path.
pub fn user_id(segment: &str) -> Result<OwnedUserId> {
    id("userId", segment)
}

/// The `{eventId}` of a path.
pub fn event_id(segment: &str) -> Result<OwnedEventId> {
    id("eventId", segment)
}

/// An identifier already decoded (a query value, a JSON string).
pub fn parsed<T: Id>(field: &str, text: &str) -> Result<T> {
    T::try_from(text).map_err(|e| {
        Error::invalid_param(format!("{field}: {text:?} is not a valid {}: {e}", T::WHAT))
    })
}

/// A query string, decoded once.
#[derive(Debug, Default, Clone)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Self {
        let decode = |text: &str| percent_decode(&text.replace('+', " "));
        Self(
            raw.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                    (decode(name), decode(value))
                })
                .collect(),
        )
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        let (_, value) = self.0.iter().find(|(key, _)| key == name)?;
        Some(value)
    }

    /// Every value of a repeated parameter (`via=a&via=b`).
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, which the endpoint requires.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.get(name)
            .ok_or_else(|| Error::missing_param(format!("{name} is required")))
    }
}

/// The first value of `name` in a raw query string.
pub fn param(query: &str, name: &str) -> Option<String> {
    Query::parse(query).get(name).map(str::to_owned)
}

/// Every value of `name` in a raw query string.
pub fn params(query: &str, name: &str) -> Vec<String> {
    Query::parse(query).all(name).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests;

/// Refuses `text` longer than `max` bytes (`M_INVALID_PARAM` naming
/// `field`): what a user may store is bounded, as the events it ends up
/// in are.
pub fn at_most(field: &str, text: &str, max: usize) -> Result<()> {
    if text.len() > max {
        return Err(Error::invalid_param(format!(
            "{field} is longer than {max} bytes"
        )));
    }
    Ok(())
}

/// Refuses a JSON value whose encoding is over `max` bytes (`M_TOO_LARGE`).
pub fn json_at_most(what: &str, value: &serde_json::Value, max: usize) -> Result<()> {
    let size = serde_json::to_vec(value).map_or(usize::MAX, |v| v.len());
    if size > max {
        return Err(Error::too_large(format!(
            "{what} is larger than {max} bytes"
        )));
    }
    Ok(())
}

/// The `{mediaId}` of a path: letters, digits, `_` and `-` only, as the
/// spec demands of servers (so no ID can climb out of a directory), and
/// at most 255 bytes.
pub fn media_id(segment: &str) -> Result<String> {
    let decoded = percent_decode(segment);
    let valid = !decoded.is_empty()
        && decoded.len() <= 255
        && decoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(Error::invalid_param(format!(
            "mediaId: {decoded:?} is not a media ID (letters, digits, _ and -)"
        )));
    }
    Ok(decoded)
}

/// A thumbnail request's `width`, `height` (positive integers) and
/// `method` (`crop`, or `scale` by default): whether to crop.
pub fn thumbnail_size(query: &Query) -> Result<(u32, u32, bool)> {
    let dimension = |name: &str| -> Result<u32> {
        query
            .required(name)?
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::invalid_param(format!("{name} must be a positive integer")))
    };
    let crop = match query.get("method") {
        None | Some("scale") => false,
        Some("crop") => true,
        Some(other) => {
            return Err(Error::invalid_param(format!(
                "method {other:?} is neither crop nor scale"
            )))
        }
    };
    Ok((dimension("width")?, dimension("height")?, crop))
}

/// An `mxc://{serverName}/{mediaId}` URI's two parts, each checked.
pub fn mxc(uri: &str) -> Result<(OwnedServerName, String)> {
    let (server, media) = uri
        .strip_prefix("mxc://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| Error::invalid_param(format!("{uri:?} is not an mxc:// URI")))?;
    Ok((parsed("serverName", server)?, media_id(media)?))
}

/// `timestamp_to_event`'s `ts` (ms) and `dir` (`f`: forward).
pub fn time_and_direction(query: &Query) -> Result<(u64, bool)> {
    let ts = query
        .required("ts")?
        .parse::<u64>()
        .map_err(|_| Error::invalid_param("ts must be a timestamp in milliseconds"))?;
    let forward = match query.required("dir")? {
        "f" => true,
        "b" => false,
        _ => return Err(Error::invalid_param("dir must be f or b")),
    };
    Ok((ts, forward))
}
