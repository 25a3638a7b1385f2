//! `[appservice]`: the application services (bridges) this server
//! serves, one registration file each, and what their namespaces claim.
//! Spec: application-service-api.md "Registration".

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use regex::Regex;
use ruma::{OwnedUserId, RoomAliasId, RoomId, ServerName, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppserviceSection {
    /// Registration files (YAML), as bridges generate them.
    pub registrations: Vec<PathBuf>,
}

/// A registration file as bridges write it. ruma's `Registration` lacks
/// the unstable flags bridges set (MSC2409's ephemeral push under its old
/// name, MSC3202's device masquerading), hence a type of our own; other
/// keys bridges add are ignored.
#[derive(Deserialize)]
struct RegistrationFile {
    id: String,
    #[serde(default)]
    url: Option<String>,
    as_token: String,
    hs_token: String,
    sender_localpart: String,
    #[serde(default)]
    namespaces: NamespacesFile,
    #[serde(default)]
    rate_limited: Option<bool>,
    #[serde(default)]
    protocols: Option<Vec<String>>,
    #[serde(default)]
    receive_ephemeral: bool,
    #[serde(default, rename = "de.sorunome.msc2409.push_ephemeral")]
    push_ephemeral: bool,
    #[serde(default, rename = "org.matrix.msc3202")]
    msc3202: bool,
    #[serde(default)]
    device_management: bool,
    #[serde(default, rename = "io.element.msc4190")]
    msc4190: bool,
}

#[derive(Deserialize, Default)]
struct NamespacesFile {
    #[serde(default)]
    users: Vec<NamespaceFile>,
    #[serde(default)]
    aliases: Vec<NamespaceFile>,
    #[serde(default)]
    rooms: Vec<NamespaceFile>,
}

#[derive(Deserialize)]
struct NamespaceFile {
    #[serde(default)]
    exclusive: bool,
    regex: String,
}

/// One namespace: IDs its regex matches from their first character, as
/// Synapse matches them (`re.match`).
#[derive(Debug)]
pub struct Namespace {
    pub regex: Regex,
    pub exclusive: bool,
    /// The literal text every match begins with, as written.
    source: String,
}

/// One application service, as registered.
#[derive(Debug)]
pub struct Appservice {
    pub id: Arc<str>,
    /// Where its transactions go; `None` pushes nothing.
    pub url: Option<String>,
    pub as_token: String,
    pub hs_token: String,
    /// `sender_localpart` on this server: the user it acts as by default.
    pub sender: OwnedUserId,
    pub users: Vec<Namespace>,
    pub aliases: Vec<Namespace>,
    pub rooms: Vec<Namespace>,
    /// Whether its users' requests are rate-limited (Synapse's default: yes).
    pub rate_limited: bool,
    pub protocols: Vec<String>,
    /// Typing, receipts and presence pushed with events (MSC2409).
    pub receive_ephemeral: bool,
    /// Device masquerading and device lists for encrypted bridges (MSC3202).
    pub device_masquerading: bool,
    /// Creates and deletes its users' devices itself, and may not log
    /// them in (MSC4190, `io.element.msc4190` before it is stable).
    pub device_management: bool,
    pub file: PathBuf,
}

fn matches(namespaces: &[Namespace], id: &str, exclusive_only: bool) -> bool {
    namespaces
        .iter()
        .any(|n| (n.exclusive || !exclusive_only) && n.regex.is_match(id))
}

impl Appservice {
    /// Whether it may act as `user`: its sender, or a user its namespaces claim.
    pub fn claims_user(&self, user: &UserId) -> bool {
        user == self.sender || matches(&self.users, user.as_str(), false)
    }

    /// Whether an exclusive namespace of its claims `user` (its sender too).
    pub fn claims_user_exclusively(&self, user: &UserId) -> bool {
        user == self.sender || matches(&self.users, user.as_str(), true)
    }

    pub fn claims_alias(&self, alias: &RoomAliasId) -> bool {
        matches(&self.aliases, alias.as_str(), false)
    }

    pub fn claims_room(&self, room: &RoomId) -> bool {
        matches(&self.rooms, room.as_str(), false)
    }

    /// Whether its users' devices live in it (MSC3202): their to-device
    /// messages (MSC4203, with ephemeral events), one-time key counts and
    /// the device lists of whom they share rooms with are pushed to it.
    pub fn holds_devices(&self) -> bool {
        self.device_masquerading && self.url.is_some()
    }
}

/// Every registration, looked up by token and by what they claim.
#[derive(Debug, Default)]
pub struct Appservices {
    all: Vec<Arc<Appservice>>,
    by_token: HashMap<String, usize>,
}

impl Appservices {
    /// Reads and checks every file `section` names: a bad file, a
    /// duplicate ID or token, or exclusive namespaces two registrations
    /// share is one line naming the file.
    pub fn load(section: &AppserviceSection, server: &ServerName) -> Result<Self, String> {
        let mut loaded = Self::default();
        for file in &section.registrations {
            let appservice = read(file, server)?;
            loaded.add(appservice)?;
        }
        Ok(loaded)
    }

    fn add(&mut self, new: Appservice) -> Result<(), String> {
        let file = new.file.display();
        for old in &self.all {
            let clash = if old.id == new.id {
                Some(format!("the id {:?}", new.id))
            } else if [&old.as_token, &old.hs_token].contains(&&new.as_token)
                || [&old.as_token, &old.hs_token].contains(&&new.hs_token)
            {
                Some("a token".to_owned())
            } else {
                overlap(old, &new)
            };
            if let Some(clash) = clash {
                return Err(format!(
                    "appservice {file}: shares {clash} with {}",
                    old.file.display()
                ));
            }
        }
        self.by_token.insert(new.as_token.clone(), self.all.len());
        self.all.push(Arc::new(new));
        Ok(())
    }

    pub fn all(&self) -> &[Arc<Appservice>] {
        &self.all
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Appservice>> {
        self.all.iter().find(|a| &*a.id == id)
    }

    /// The registration whose `as_token` this is.
    pub fn by_as_token(&self, token: &str) -> Option<&Arc<Appservice>> {
        self.by_token.get(token).map(|i| &self.all[*i])
    }

    /// The registration that claims `user` exclusively.
    pub fn exclusive_owner_of_user(&self, user: &UserId) -> Option<&Arc<Appservice>> {
        self.all.iter().find(|a| a.claims_user_exclusively(user))
    }

    /// The registration that claims `alias` exclusively.
    pub fn exclusive_owner_of_alias(&self, alias: &RoomAliasId) -> Option<&Arc<Appservice>> {
        self.all
            .iter()
            .find(|a| matches(&a.aliases, alias.as_str(), true))
    }
}

fn read(file: &Path, server: &ServerName) -> Result<Appservice, String> {
    let at = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("appservice {at}: {e}"))?;
    let parsed: RegistrationFile =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("appservice {at}: {e}"))?;
    compile(parsed, file, server).map_err(|e| format!("appservice {at}: {e}"))
}

fn compile(
    parsed: RegistrationFile,
    file: &Path,
    server: &ServerName,
) -> Result<Appservice, String> {
    if parsed.id.is_empty() {
        return Err("id is empty".into());
    }
    if parsed.as_token.is_empty() || parsed.hs_token.is_empty() {
        return Err("as_token and hs_token must not be empty".into());
    }
    if parsed.as_token == parsed.hs_token {
        return Err("as_token and hs_token must differ".into());
    }
    let sender = UserId::parse(format!("@{}:{server}", parsed.sender_localpart))
        .map_err(|e| format!("sender_localpart {:?}: {e}", parsed.sender_localpart))?;
    if let Some(url) = &parsed.url {
        let uri: http::Uri = url.parse().map_err(|e| format!("url {url:?}: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("url {url:?} is not an http(s) URL"));
        }
    }
    let namespaces = |list: Vec<NamespaceFile>, kind: &str| {
        list.into_iter()
            .map(|n| {
                let regex = Regex::new(&format!("^(?:{})", n.regex))
                    .map_err(|e| format!("namespaces.{kind}: {:?}: {e}", n.regex))?;
                Ok(Namespace {
                    regex,
                    exclusive: n.exclusive,
                    source: n.regex,
                })
            })
            .collect::<Result<Vec<_>, String>>()
    };
    Ok(Appservice {
        id: parsed.id.into(),
        url: parsed.url,
        as_token: parsed.as_token,
        hs_token: parsed.hs_token,
        sender,
        users: namespaces(parsed.namespaces.users, "users")?,
        aliases: namespaces(parsed.namespaces.aliases, "aliases")?,
        rooms: namespaces(parsed.namespaces.rooms, "rooms")?,
        rate_limited: parsed.rate_limited.unwrap_or(true),
        protocols: parsed.protocols.unwrap_or_default(),
        receive_ephemeral: parsed.receive_ephemeral || parsed.push_ephemeral,
        device_masquerading: parsed.msc3202,
        device_management: parsed.device_management || parsed.msc4190,
        file: file.to_owned(),
    })
}

/// Whether two registrations claim some of the same IDs exclusively:
/// one's sender in the other's exclusive namespace, or two exclusive
/// namespaces whose matches may begin alike (the literal text each
/// regex starts with, one a prefix of the other's: `@wa_.*` and
/// `@wa_bot_.*` do). Conservative: it may see an overlap that two
/// suffixes rule out, never miss one two prefixes share.
fn overlap(a: &Appservice, b: &Appservice) -> Option<String> {
    for (x, y) in [(a, b), (b, a)] {
        if matches(&y.users, x.sender.as_str(), true) {
            return Some(format!("its sender {}, which the other claims", x.sender));
        }
    }
    for (kind, xs, ys) in [
        ("users", &a.users, &b.users),
        ("aliases", &a.aliases, &b.aliases),
        ("rooms", &a.rooms, &b.rooms),
    ] {
        for x in xs.iter().filter(|n| n.exclusive) {
            for y in ys.iter().filter(|n| n.exclusive) {
                let (px, py) = (literal_prefix(&x.source), literal_prefix(&y.source));
                if px.starts_with(&py) || py.starts_with(&px) {
                    return Some(format!(
                        "exclusive {kind} ({:?} and {:?} may match the same IDs)",
                        x.source, y.source
                    ));
                }
            }
        }
    }
    None
}

/// The literal text a regex's matches start with: its characters up to
/// the first one with a meaning (`.`, `*`, `[`, ...), escapes resolved.
fn literal_prefix(regex: &str) -> String {
    let mut prefix = String::new();
    let mut chars = regex.trim_start_matches('^').chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if !e.is_alphanumeric() => prefix.push(e),
                _ => break,
            },
            '.' | '*' | '+' | '?' | '[' | '(' | '|' | '{' | '$' | ')' => {
                // A quantifier applies to the character before it.
                if matches!(c, '*' | '?' | '{') {
                    prefix.pop();
                }
                break;
            }
            c => prefix.push(c),
        }
    }
    prefix
}

#[cfg(test)]
#[path = "appservices_tests.rs"]
mod tests;
