use super::*;

/// Fills a block from `Allocator`, grows or shrinks it across the
/// threshold, and checks that what fits survived the move.
unsafe fn resized_keeps_contents(from: usize, to: usize) {
    let layout = Layout::from_size_align(from, 16).expect("layout");
    let block = Allocator.alloc(layout);
    assert!(!block.is_null());
    for i in 0..from {
        *block.add(i) = (i % 251) as u8;
    }
    let moved = Allocator.realloc(block, layout, to);
    assert!(!moved.is_null());
    for i in 0..from.min(to) {
        assert_eq!(*moved.add(i), (i % 251) as u8, "byte {i} of {from} -> {to}");
    }
    Allocator.dealloc(moved, Layout::from_size_align(to, 16).expect("layout"));
}

#[test]
fn blocks_keep_their_contents_across_the_threshold() {
    // SAFETY: each block is used within its layout and freed once.
    unsafe {
        resized_keeps_contents(1000, LARGE + 1000);
        resized_keeps_contents(LARGE + 1000, 1000);
        resized_keeps_contents(100, 5000);
        resized_keeps_contents(LARGE, 4 * LARGE);
    }
}

#[test]
fn zeroed_blocks_are_zero_on_both_sides() {
    for size in [64, LARGE, 3 * LARGE] {
        let layout = Layout::from_size_align(size, 64).expect("layout");
        // SAFETY: read within the layout, then freed once.
        unsafe {
            let block = Allocator.alloc_zeroed(layout);
            assert!(!block.is_null());
            assert_eq!(block as usize % 64, 0, "alignment of {size}");
            assert!((0..size).all(|i| *block.add(i) == 0));
            Allocator.dealloc(block, layout);
        }
    }
}
