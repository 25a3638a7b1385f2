//! Link previews (`/preview_url`), when `media.url_previews` is on: the
//! page is fetched through `net::page` (public addresses only, bounded
//! in bytes and time), its OpenGraph tags (or `<title>`) read, and its
//! `og:image` stored as media so clients show it from `mxc://`. Answers
//! are kept an hour, a bounded number of them.
//! Spec: client-server-api "Content repository", preview_url.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use http::StatusCode;
use serde_json::{Map, Value};

use super::MediaService;
use crate::{
    error::{Error, Result},
    net::web::{Page, WebError},
    store::media::MediaKey,
};

/// Longest URL previewed.
const MAX_URL: usize = 2048;
/// Most of a page read.
const MAX_PAGE: usize = 1024 * 1024;
/// Most of an `og:image` read.
const MAX_IMAGE: usize = 5 * 1024 * 1024;
/// Longest a page (or its image) may take.
const DEADLINE: Duration = Duration::from_secs(10);
/// How long an answer is reused, and how many are kept.
const KEPT_FOR: Duration = Duration::from_secs(3600);
const KEPT: usize = 512;
/// Tags passed on, as the spec's example has them.
const TAGS: &[&str] = &[
    "og:title",
    "og:description",
    "og:site_name",
    "og:type",
    "og:url",
];

/// Answers already given, by URL.
#[derive(Default)]
pub(super) struct Previews(std::sync::Mutex<HashMap<String, (Instant, Value)>>);

impl Previews {
    fn get(&self, url: &str) -> Option<Value> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.get(url)
            .filter(|(at, _)| at.elapsed() < KEPT_FOR)
            .map(|(_, value)| value.clone())
    }

    fn put(&self, url: &str, value: &Value) {
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= KEPT {
            kept.retain(|_, (at, _)| at.elapsed() < KEPT_FOR);
            if kept.len() >= KEPT {
                kept.clear();
            }
        }
        kept.insert(url.to_owned(), (Instant::now(), value.clone()));
    }
}

impl MediaService {
    /// The preview of `url` (an object of OpenGraph fields, maybe empty).
    pub async fn preview(&self, url: &str) -> Result<Value> {
        if !self.config.url_previews {
            return Err(Error::new(
                StatusCode::NOT_FOUND,
                "M_UNRECOGNIZED",
                "link previews are off on this server",
            ));
        }
        if url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Error::invalid_param(format!(
                "url must be an http or https URL of at most {MAX_URL} bytes"
            )));
        }
        if let Some(kept) = self.previews.get(url) {
            return Ok(kept);
        }
        let page = self.fetch_page(url, MAX_PAGE).await?;
        let html = page
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/xhtml"));
        let mut preview = Map::new();
        if html {
            let tags = open_graph(&String::from_utf8_lossy(&page.body));
            for tag in TAGS {
                if let Some(value) = tags.get(*tag) {
                    preview.insert((*tag).to_owned(), Value::String(value.clone()));
                }
            }
            if let Some(image) = tags.get("og:image") {
                let image = absolute(url, image);
                if let Ok(fields) = self.preview_image(&image).await {
                    preview.extend(fields);
                }
            }
        }
        let preview = Value::Object(preview);
        self.previews.put(url, &preview);
        Ok(preview)
    }

    async fn fetch_page(&self, url: &str, limit: usize) -> Result<Page> {
        self.pages
            .get(url, limit, DEADLINE)
            .await
            .map_err(|e| match e {
                WebError::Refused(why) => Error::forbidden(why),
                WebError::TooLarge => Error::new(
                    StatusCode::BAD_GATEWAY,
                    "M_TOO_LARGE",
                    format!("the page is larger than {limit} bytes"),
                ),
                WebError::Failed(why) => Error::remote(why),
            })
    }

    /// Stores a page's image as our media; its `og:image` fields.
    async fn preview_image(&self, url: &str) -> Result<Map<String, Value>> {
        let page = self.fetch_page(url, MAX_IMAGE).await?;
        let content_type = page.content_type.unwrap_or_default();
        if !content_type.starts_with("image/") {
            return Err(Error::remote("og:image is not an image"));
        }
        let body = futures_util::stream::iter([Ok::<_, std::io::Error>(page.body)]);
        let received = self
            .files
            .receive(body, self.budget(MAX_IMAGE as u64))
            .await
            .map_err(|e| super::receive_error(e, MAX_IMAGE as u64, StatusCode::BAD_GATEWAY))?;
        let received_size = received.size;
        let media_id = super::new_media_id();
        let at = MediaKey {
            server: self.server_name.as_str(),
            media_id: &media_id,
        };
        self.keep_unowned(at, received, content_type.clone(), None)
            .await?;
        let mut fields = Map::new();
        fields.insert(
            "og:image".into(),
            Value::String(format!("mxc://{}/{media_id}", self.server_name)),
        );
        fields.insert("og:image:type".into(), Value::String(content_type));
        fields.insert("matrix:image:size".into(), Value::from(received_size));
        Ok(fields)
    }
}

/// `content` of each `<meta property|name="og:…">`, and `<title>` as
/// `og:title` when the page gives none; entities decoded.
pub fn open_graph(html: &str) -> HashMap<String, String> {
    let mut tags = HashMap::new();
    let lower = html.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<meta") {
        let start = at + start;
        let end = lower[start..].find('>').map_or(lower.len(), |e| start + e);
        let tag = &html[start..end];
        let name = attribute(tag, "property").or_else(|| attribute(tag, "name"));
        if let (Some(name), Some(content)) = (name, attribute(tag, "content")) {
            let name = name.to_ascii_lowercase();
            if name.starts_with("og:") {
                tags.entry(name).or_insert(content);
            }
        }
        at = end;
    }
    if !tags.contains_key("og:title") {
        let title = lower.find("<title").and_then(|start| {
            let open = start + lower[start..].find('>')? + 1;
            let close = open + lower[open..].find("</title")?;
            Some(decode_entities(html[open..close].trim()))
        });
        if let Some(title) = title.filter(|t| !t.is_empty()) {
            tags.insert("og:title".into(), title);
        }
    }
    tags
}

/// The value of `name="…"` (or `'…'`) in one tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        from = start + name.len();
        let before_ok = start == 0 || lower.as_bytes()[start - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let value_at = tag.len() - rest.len() + 1;
        let value = tag[value_at..].trim_start();
        let quote = value.chars().next()?;
        if quote != '"' && quote != '\'' {
            continue;
        }
        let close = value[1..].find(quote)?;
        return Some(decode_entities(&value[1..1 + close]));
    }
    None
}

fn decode_entities(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `image` made absolute against the page's `url`.
fn absolute(url: &str, image: &str) -> String {
    if image.starts_with("http://") || image.starts_with("https://") {
        return image.to_owned();
    }
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let origin_end = url[scheme_end..]
        .find('/')
        .map_or(url.len(), |i| scheme_end + i);
    if let Some(rest) = image.strip_prefix("//") {
        return format!("{}//{rest}", &url[..scheme_end.saturating_sub(2)]);
    }
    if image.starts_with('/') {
        return format!("{}{image}", &url[..origin_end]);
    }
    let base_end = url
        .rfind('/')
        .filter(|i| *i >= origin_end)
        .map_or(url.len(), |i| i + 1);
    let base = &url[..base_end];
    if base_end == url.len() && !base.ends_with('/') {
        return format!("{base}/{image}");
    }
    format!("{base}{image}")
}

#[cfg(test)]
mod tests;
