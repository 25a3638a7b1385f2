use super::*;

fn png(width: u32, height: u32) -> Vec<u8> {
    let picture = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(picture)
        .write_to(&mut out, ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

fn dimensions(bytes: &[u8]) -> (u32, u32) {
    image::load_from_memory(bytes)
        .expect("decodes")
        .into_dimensions_pair()
}

trait Pair {
    fn into_dimensions_pair(self) -> (u32, u32);
}

impl Pair for DynamicImage {
    fn into_dimensions_pair(self) -> (u32, u32) {
        (self.width(), self.height())
    }
}

#[test]
fn requests_map_to_the_specs_sizes() {
    assert_eq!(choose(20, 20, true), spec(32, 32, true));
    assert_eq!(choose(64, 64, true), spec(96, 96, true));
    assert_eq!(choose(300, 200, false), spec(320, 240, false));
    assert_eq!(choose(5000, 5000, false), spec(800, 600, false));
}

#[test]
fn scale_keeps_the_aspect_and_crop_fills_the_box() {
    let source = png(1000, 500);
    let (bytes, kind) = make(&source, ImageFormat::Png, spec(320, 240, false))
        .expect("made")
        .expect("smaller");
    assert_eq!(kind, "image/jpeg");
    assert_eq!(dimensions(&bytes), (320, 160));
    let (bytes, _) = make(&source, ImageFormat::Png, spec(96, 96, true))
        .expect("made")
        .expect("smaller");
    assert_eq!(dimensions(&bytes), (96, 96));
}

#[test]
fn a_small_picture_is_never_upscaled() {
    let source = png(50, 40);
    assert!(make(&source, ImageFormat::Png, spec(320, 240, false))
        .expect("read")
        .is_none());
    // Cropping a picture narrower than the box keeps its own width.
    let (bytes, _) = make(&png(60, 300), ImageFormat::Png, spec(96, 96, true))
        .expect("made")
        .expect("smaller");
    assert_eq!(dimensions(&bytes), (60, 96));
}

#[test]
fn a_picture_declaring_vast_dimensions_is_refused_before_decoding() {
    // A valid PNG header declaring 100,000 x 100,000 pixels and no data.
    let mut header = png(1, 1);
    header[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    header[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = crc32(&header[12..29]);
    header[29..33].copy_from_slice(&crc.to_be_bytes());
    match make(&header, ImageFormat::Png, spec(32, 32, true)) {
        Err(Refused::TooLarge(why)) => assert!(why.contains("pixels"), "{why}"),
        other => panic!(
            "not refused as too large: {:?}",
            other.map(|o| o.map(|t| t.1))
        ),
    }
}

/// The CRC-32 PNG chunks carry (ISO-HDLC), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn gif_and_webp_are_read_too() {
    let picture = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(400, 200, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, 255])
    }));
    for format in [ImageFormat::Gif, ImageFormat::WebP] {
        let mut source = Cursor::new(Vec::new());
        picture.write_to(&mut source, format).expect("encode");
        let (bytes, kind) = make(source.get_ref(), format, spec(96, 96, true))
            .expect("made")
            .expect("smaller");
        assert_eq!(kind, "image/png", "{format:?} has alpha");
        assert_eq!(dimensions(&bytes), (96, 96), "{format:?}");
    }
}
