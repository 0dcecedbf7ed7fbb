//! The engine's memory allocator: mimalloc for small blocks, the system's for large ones.
//!
//! A request allocates and frees a few dozen small blocks, many of them on one thread and freed
//! on the other (a job built on the Python thread and dropped on tokio's, a response the other
//! way round). mimalloc does this for about 10 % less CPU per request than glibc's malloc
//! (`benchmarks/run.py`, u=50 and u=200). But mimalloc keeps large freed blocks mapped for
//! reuse, and a run fetching 100 MB bodies peaked at half again the memory. glibc maps each large
//! block on its own and unmaps it when it is freed, so response bodies and read buffers past
//! `LARGE` go there, and memory held is memory in use.
//!
//! The `mimalloc` crate asks for every block through mimalloc's aligned entry points. For a block
//! over 1 KiB, or one whose size class is not a power of two, those take a slow path that
//! over-allocates: seven blocks of every request did, 1.5 % of a request's instructions.
//! A layout that needs no more than 16-byte alignment goes to the plain entry points instead,
//! which align every block of 16 bytes or more to 16, as malloc does (and as std's `System`
//! decides for malloc).

use std::alloc::{GlobalAlloc, Layout, System};

use libmimalloc_sys::{mi_malloc, mi_realloc, mi_zalloc};
use mimalloc::MiMalloc;

/// From this size on a block comes from the system allocator. Below glibc's mmap threshold
/// (128 KiB, rising to 32 MiB as it adapts), glibc would keep freed blocks in its own heap.
const LARGE: usize = 256 << 10;

pub struct Engine;

fn large(size: usize) -> bool {
    size >= LARGE
}

/// What mimalloc's plain entry points give a block of `size` bytes without asking: 16-byte
/// alignment from 16 bytes up, 8 below (its smallest size class).
const PLAIN_ALIGN: usize = 16;

fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every call goes to one of two allocators that uphold GlobalAlloc's contract, and a
// block is always freed or resized by the allocator that made it: the size in its layout decides,
// and it is the same at every call for one block.
unsafe impl GlobalAlloc for Engine {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            unsafe { System.alloc(layout) }
        } else if plain(layout.align(), layout.size()) {
            unsafe { mi_malloc(layout.size()).cast() }
        } else {
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if large(layout.size()) {
            unsafe { System.alloc_zeroed(layout) }
        } else if plain(layout.align(), layout.size()) {
            unsafe { mi_zalloc(layout.size()).cast() }
        } else {
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if large(layout.size()) {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match (large(layout.size()), large(new_size)) {
            (true, true) => unsafe { System.realloc(ptr, layout, new_size) },
            (false, false) if plain(layout.align(), new_size) => unsafe {
                mi_realloc(ptr.cast(), new_size).cast()
            },
            (false, false) => unsafe { MiMalloc.realloc(ptr, layout, new_size) },
            // Crossing the line moves the block to the other allocator.
            _ => {
                // SAFETY: the caller guarantees new_size, rounded up to the alignment, fits isize.
                let new_layout =
                    unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                let new = unsafe { self.alloc(new_layout) };
                if !new.is_null() {
                    // SAFETY: both blocks are live and at least min(old, new) bytes long.
                    unsafe {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks that grow and shrink across the line keep their bytes, whichever allocator holds them.
    #[test]
    fn realloc_across_the_line_keeps_the_contents() {
        let mut v: Vec<u8> = Vec::new();
        for i in 0..(LARGE * 2) {
            v.push((i % 251) as u8);
        }
        v.truncate(1000);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
        let mut big: Vec<u64> = Vec::with_capacity(LARGE);
        big.extend(0..(LARGE as u64));
        big.truncate(10);
        big.shrink_to_fit();
        assert_eq!(big, (0..10).collect::<Vec<u64>>());
    }

    /// Every layout gets its alignment, through the plain entry points (up to 16) or the aligned
    /// ones (beyond), and keeps it and its bytes when it grows or shrinks.
    #[test]
    fn every_layout_gets_its_alignment() {
        for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
            for size in (1..=70).chain([100, 1000, 1040, 1500, 4096, 70_000]) {
                let size = size.max(align) / align * align;
                let layout =
                    Layout::from_size_align(size, align).unwrap_or_else(|e| unreachable!("{e}"));
                for zeroed in [false, true] {
                    // SAFETY: a non-zero size; the block is written within its size and freed with its layout.
                    unsafe {
                        let p = if zeroed {
                            Engine.alloc_zeroed(layout)
                        } else {
                            Engine.alloc(layout)
                        };
                        assert!(
                            !p.is_null() && (p as usize).is_multiple_of(align),
                            "{size} {align}"
                        );
                        if zeroed {
                            assert!((0..size).all(|i| *p.add(i) == 0));
                        }
                        p.write_bytes(0xa5, size);
                        let grown = size * 3;
                        let q = Engine.realloc(p, layout, grown);
                        assert!(
                            !q.is_null() && (q as usize).is_multiple_of(align),
                            "{size} {align} grown"
                        );
                        assert!((0..size).all(|i| *q.add(i) == 0xa5));
                        Engine.dealloc(q, Layout::from_size_align_unchecked(grown, align));
                    }
                }
            }
        }
    }

    #[test]
    fn zeroed_blocks_are_zero_on_both_sides() {
        for n in [64, LARGE - 1, LARGE, LARGE * 4] {
            let v = vec![0u8; n];
            assert!(v.iter().all(|b| *b == 0));
        }
    }
}
