//! Thumbnails, made by the `image` crate on first request at the spec's
//! sizes and kept like uploads. Decoding is where a hostile image hurts
//! (a small file declaring a vast picture): the decoder is told the most
//! pixels and memory it may use before it allocates, runs off the async
//! threads, one at a time, and is waited for a bounded time.
//! Spec: client-server-api "Thumbnails".

use std::{io::Cursor, time::Duration};

use http::StatusCode;
use image::{imageops::FilterType, DynamicImage, ImageFormat};
use ruma::ServerName;

use super::{Download, Fetch, MediaService};
use crate::{
    error::{Error, Result},
    store::media::{MediaKey, StoredFile, ThumbnailSpec},
};

/// Thumbnails made at once (each may hold ~100 MB while decoding).
pub const AT_ONCE: usize = 1;
/// Largest picture decoded, in pixels (24 MP: a 6000x4000 photo).
const MAX_PIXELS: u64 = 24_000_000;
/// Memory the decoder may allocate.
const MAX_ALLOC: u64 = 128 * 1024 * 1024;
/// Largest file thumbnailed, in bytes.
const MAX_SOURCE: u64 = 32 * 1024 * 1024;
/// Longest a client waits for a thumbnail to be made.
const DEADLINE: Duration = Duration::from_secs(30);

/// The spec's sizes, each made once per media item.
const SIZES: [ThumbnailSpec; 5] = [
    spec(32, 32, true),
    spec(96, 96, true),
    spec(320, 240, false),
    spec(640, 480, false),
    spec(800, 600, false),
];

const fn spec(width: u32, height: u32, crop: bool) -> ThumbnailSpec {
    ThumbnailSpec {
        width,
        height,
        crop,
    }
}

/// The size made for a request: the smallest of the spec's sizes (of
/// the method asked for) at least as large, else the largest.
pub fn choose(width: u32, height: u32, crop: bool) -> ThumbnailSpec {
    let same = SIZES.iter().filter(|s| s.crop == crop);
    same.clone()
        .find(|s| s.width >= width && s.height >= height)
        .or_else(|| same.clone().next_back())
        .copied()
        .unwrap_or(spec(width, height, crop))
}

/// Whether the `image` crate here reads this content type.
fn decodable(content_type: &str) -> Option<ImageFormat> {
    match content_type.split(';').next().unwrap_or_default().trim() {
        "image/png" | "image/apng" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Why no thumbnail was made.
#[derive(Debug)]
pub enum Refused {
    /// The picture is larger than decoding may take.
    TooLarge(String),
    /// Not a picture the decoders read.
    Unreadable(String),
}

/// A thumbnail of `source` at `spec`: PNG when the picture has alpha,
/// JPEG otherwise; `None` when the picture is no larger than `spec`
/// (the original is served: never upscaled).
pub fn make(
    source: &[u8],
    format: ImageFormat,
    spec: ThumbnailSpec,
) -> std::result::Result<Option<(Vec<u8>, &'static str)>, Refused> {
    let mut reader = image::ImageReader::with_format(Cursor::new(source), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let (width, height) = reader
        .into_dimensions()
        .map_err(|e| Refused::Unreadable(e.to_string()))?;
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Refused::TooLarge(format!(
            "{width}x{height} is more than {MAX_PIXELS} pixels"
        )));
    }
    if width <= spec.width && height <= spec.height {
        return Ok(None);
    }
    let mut reader = image::ImageReader::with_format(Cursor::new(source), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(e) => Refused::TooLarge(e.to_string()),
        other => Refused::Unreadable(other.to_string()),
    })?;
    let small = if spec.crop {
        crop(&picture, spec)
    } else {
        picture.resize(spec.width, spec.height, FilterType::Triangle)
    };
    encode(&small).map(Some)
}

/// Scaled to cover `spec` (never up), then its centre cut to `spec`.
fn crop(picture: &DynamicImage, spec: ThumbnailSpec) -> DynamicImage {
    let (width, height) = (picture.width(), picture.height());
    let factor = f64::max(
        f64::from(spec.width) / f64::from(width),
        f64::from(spec.height) / f64::from(height),
    )
    .min(1.0);
    let scaled_width = ((f64::from(width) * factor).round() as u32).max(1);
    let scaled_height = ((f64::from(height) * factor).round() as u32).max(1);
    let scaled = picture.resize_exact(scaled_width, scaled_height, FilterType::Triangle);
    let (cut_width, cut_height) = (spec.width.min(scaled_width), spec.height.min(scaled_height));
    scaled.crop_imm(
        (scaled_width - cut_width) / 2,
        (scaled_height - cut_height) / 2,
        cut_width,
        cut_height,
    )
}

fn encode(picture: &DynamicImage) -> std::result::Result<(Vec<u8>, &'static str), Refused> {
    let mut out = Cursor::new(Vec::new());
    let (picture, format, content_type) = if picture.color().has_alpha() {
        (picture.clone(), ImageFormat::Png, "image/png")
    } else {
        (
            DynamicImage::ImageRgb8(picture.to_rgb8()),
            ImageFormat::Jpeg,
            "image/jpeg",
        )
    };
    picture
        .write_to(&mut out, format)
        .map_err(|e| Refused::Unreadable(format!("encoding the thumbnail: {e}")))?;
    Ok((out.into_inner(), content_type))
}

impl MediaService {
    /// A thumbnail of `server`/`media_id` at least `width`x`height`
    /// (the original when it is no larger), made once and kept.
    pub async fn thumbnail(
        &self,
        server: &ServerName,
        media_id: &str,
        (width, height, crop): (u32, u32, bool),
        fetch: Fetch,
    ) -> Result<Download> {
        let original = self.download(server, media_id, fetch).await?;
        let ours = server == self.server_name;
        let Some(format) = decodable(&original.content_type) else {
            return Err(Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("cannot make thumbnails of {}", original.content_type),
            ));
        };
        if original.size > MAX_SOURCE {
            return Err(too_large(
                ours,
                &format!("the file is over {MAX_SOURCE} bytes"),
            ));
        }
        let spec = choose(width, height, crop);
        let at = MediaKey {
            server: server.as_str(),
            media_id,
        };
        if let Some(file) = self.store.thumbnail(at, spec)? {
            return Ok(self.served(file));
        }
        let made = self.render(&original, format, spec, ours).await?;
        let Some((bytes, content_type)) = made else {
            return Ok(original);
        };
        let _naming = self.naming.lock().await;
        let (sha256, size) = self
            .files
            .write(bytes)
            .await
            .map_err(|e| Error::internal(format!("storing a thumbnail: {e}")))?;
        let file = StoredFile {
            sha256,
            size,
            content_type: content_type.to_owned(),
        };
        self.store.insert_thumbnail(at, spec, &file)?;
        Ok(self.served(file))
    }

    /// Decodes and shrinks on a blocking thread, one at a time.
    async fn render(
        &self,
        original: &Download,
        format: ImageFormat,
        spec: ThumbnailSpec,
        ours: bool,
    ) -> Result<Option<(Vec<u8>, &'static str)>> {
        let busy = || Error::limit_exceeded("thumbnails are being made; try again", 2000);
        let permit = tokio::time::timeout(DEADLINE, self.thumbnailing.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let path = original.path.clone();
        // The permit stays with the work: a decode still running after
        // the client gave up keeps others waiting.
        let work = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let source = std::fs::read(path).map_err(|e| Refused::Unreadable(e.to_string()))?;
            make(&source, format, spec)
        });
        let made = tokio::time::timeout(DEADLINE, work)
            .await
            .map_err(|_| {
                Error::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "M_UNKNOWN",
                    "the thumbnail took too long",
                )
            })?
            .map_err(|e| Error::internal(format!("thumbnailing failed: {e}")));
        match made? {
            Ok(made) => Ok(made),
            Err(Refused::TooLarge(why)) => Err(too_large(ours, &why)),
            Err(Refused::Unreadable(why)) => Err(Error::new(
                StatusCode::BAD_REQUEST,
                "M_UNKNOWN",
                format!("cannot make a thumbnail: {why}"),
            )),
        }
    }

    fn served(&self, file: StoredFile) -> Download {
        Download {
            path: self.files.path(&file.sha256),
            size: file.size,
            content_type: file.content_type,
            filename: None,
        }
    }
}

/// 413 for our content, 502 for another server's, as the spec has it.
fn too_large(ours: bool, why: &str) -> Error {
    let status = if ours {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_GATEWAY
    };
    Error::new(
        status,
        "M_TOO_LARGE",
        format!("too large to thumbnail: {why}"),
    )
}

#[cfg(test)]
mod tests;
