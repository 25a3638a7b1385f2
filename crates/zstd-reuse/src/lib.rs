//! hearth's stand-in for the three calls sled 0.34 makes into the `zstd`
//! crate (0.9): `block::compress`, `block::decompress` and
//! `stream::decode_all`, patched in by hearth's `Cargo.toml`.
//!
//! Why: zstd 0.9 builds a new compression context for every
//! `block::compress` and a new streaming decoder for every `decode_all`
//! (~14 us and ~15-25 us of set-up each on a 2-core machine), and sled
//! calls them for every record it logs and every page it reads back from
//! disk: with sled's compression on, that halved hearth's federation
//! ingest. These keep one context of each kind per thread, and write
//! and read the same zstd frames.

use std::{cell::RefCell, io};

/// Inputs up to this size use the thread's kept context; a context sized
/// for larger ones (sled's blobs) would keep megabytes per thread.
const REUSED_UP_TO: usize = 64 * 1024;
/// The most `decode_all` allocates for a frame's declared size: sled's
/// pages and hearth's records are far smaller, and a damaged header must
/// not ask for the machine's memory.
const MAX_DECODED: u64 = 1 << 30;

thread_local! {
    static COMPRESSOR: RefCell<zstd_safe::CCtx<'static>> = RefCell::new(zstd_safe::create_cctx());
    static DECOMPRESSOR: RefCell<zstd_safe::DCtx<'static>> = RefCell::new(zstd_safe::create_dctx());
}

fn error(code: zstd_safe::ErrorCode) -> io::Error {
    io::Error::other(zstd_safe::get_error_name(code))
}

pub mod block {
    use super::*;

    /// One zstd frame holding `data` (with its size, as zstd 0.9 wrote it).
    pub fn compress(data: &[u8], level: i32) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(zstd_safe::compress_bound(data.len()));
        let written = if data.len() <= REUSED_UP_TO {
            COMPRESSOR.with(|context| context.borrow_mut().compress(&mut out, data, level))
        } else {
            zstd_safe::create_cctx().compress(&mut out, data, level)
        };
        written.map_err(error)?;
        Ok(out)
    }

    /// The content of the frame `data`, which must fit in `capacity` bytes.
    pub fn decompress(data: &[u8], capacity: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(capacity);
        DECOMPRESSOR
            .with(|context| context.borrow_mut().decompress(&mut out, data))
            .map_err(error)?;
        Ok(out)
    }
}

pub mod stream {
    use super::*;

    /// The content of the frame read from `source`. Frames written by
    /// [`block::compress`] carry their content's size; one that does not,
    /// or declares more than [`MAX_DECODED`], is refused.
    pub fn decode_all<R: io::Read>(mut source: R) -> io::Result<Vec<u8>> {
        let mut frame = Vec::new();
        source.read_to_end(&mut frame)?;
        let size = zstd_safe::get_frame_content_size(&frame);
        if size > MAX_DECODED {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a zstd frame without a usable content size",
            ));
        }
        block::decompress(&frame, size as usize)
    }
}

#[cfg(test)]
mod tests;
