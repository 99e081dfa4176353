//! Buffer recycling for the frame path: images, class maps and token grids travel between
//! threads as `Arc<T>`, and the stage that fills them keeps a few in a [`BufferPool`]. A buffer
//! is free again as soon as every clone handed out has been dropped, so a steady stream writes
//! each frame into memory an earlier frame used and allocates nothing.
//!
//! No `Drop` bookkeeping is needed: `Arc::get_mut` tells the owner whether anybody else still
//! holds a buffer.

use std::sync::Arc;

/// Up to `capacity` reusable buffers owned by the one stage that fills them.
#[derive(Debug)]
pub struct BufferPool<T> {
    slots: Vec<Arc<T>>,
    capacity: usize,
    /// Buffers made because every slot was still in use downstream (a subscriber holding on to
    /// frames, a full queue): the pool then behaves like plain allocation and says so here.
    overflow: u64,
}

impl<T: Default> BufferPool<T> {
    /// A pool that keeps at most `capacity` buffers (at least one). Enough for a stream is the
    /// number of frames alive at once: one per queue slot and stage, plus what subscribers keep.
    pub fn new(capacity: usize) -> Self {
        Self {
            slots: Vec::new(),
            capacity: capacity.max(1),
            overflow: 0,
        }
    }

    /// Fills a free buffer (one no clone of which is alive any more, or a new one while the pool
    /// is below capacity) with `fill` and hands out a shared reference to it. `fill` sees the
    /// buffer's old contents, so it can reuse its allocation (resize only when the size changes).
    pub fn fill<E>(&mut self, fill: impl FnOnce(&mut T) -> Result<(), E>) -> Result<Arc<T>, E> {
        let free = self
            .slots
            .iter_mut()
            .position(|slot| Arc::get_mut(slot).is_some());
        let slot = match free {
            Some(i) => &mut self.slots[i],
            None if self.slots.len() < self.capacity => {
                self.slots.push(Arc::new(T::default()));
                self.slots.last_mut().expect("just pushed")
            }
            None => {
                self.overflow += 1;
                let mut fresh = T::default();
                fill(&mut fresh)?;
                return Ok(Arc::new(fresh));
            }
        };
        fill(Arc::get_mut(slot).expect("a free slot has no other owner"))?;
        Ok(slot.clone())
    }

    /// Lets the pool keep at least `capacity` buffers (it never shrinks): what a consumer that
    /// holds that many at once needs so that nothing overflows.
    pub fn reserve(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Buffers the pool holds (in use or free).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Buffers made outside the pool because every slot was busy.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_with(pool: &mut BufferPool<Vec<u8>>, value: u8) -> Arc<Vec<u8>> {
        pool.fill(|v| {
            v.clear();
            v.resize(16, value);
            Ok::<_, ()>(())
        })
        .unwrap()
    }

    #[test]
    fn a_released_buffer_is_reused() {
        let mut pool = BufferPool::new(2);
        let first = fill_with(&mut pool, 1);
        let ptr = first.as_ptr();
        drop(first);
        let second = fill_with(&mut pool, 2);
        assert_eq!(second.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(second[0], 2);
        assert_eq!((pool.len(), pool.overflow()), (1, 0));
    }

    #[test]
    fn a_buffer_still_held_is_never_overwritten() {
        let mut pool = BufferPool::new(2);
        let held = fill_with(&mut pool, 7);
        let other = fill_with(&mut pool, 8);
        assert_eq!((held[0], other[0]), (7, 8));
        // Both slots are busy: the third is made outside the pool and counted.
        let third = fill_with(&mut pool, 9);
        assert_eq!(
            (held[0], third[0], pool.len(), pool.overflow()),
            (7, 9, 2, 1)
        );
    }

    #[test]
    fn a_reserved_pool_keeps_more_buffers_instead_of_overflowing() {
        let mut pool = BufferPool::new(1);
        pool.reserve(3);
        let held: Vec<_> = (0..3).map(|i| fill_with(&mut pool, i)).collect();
        assert_eq!((pool.len(), pool.overflow(), held.len()), (3, 0, 3));
        pool.reserve(2);
        assert_eq!(pool.len(), 3, "reserve never shrinks");
    }

    #[test]
    fn a_failed_fill_returns_the_error() {
        let mut pool: BufferPool<Vec<u8>> = BufferPool::new(1);
        assert_eq!(pool.fill(|_| Err("bad frame")).unwrap_err(), "bad frame");
    }
}
