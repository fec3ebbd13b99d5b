//! 64-byte aligned f32 storage for activations and packed weights.
//!
//! Alignment to a cache line means a 16-lane AVX-512 load never straddles two lines when the
//! offset is a multiple of 16 floats (every padded channel row is), and two threads writing
//! disjoint 32-column panels of one output never share a line.

/// One cache line of floats: the allocation unit that carries the alignment.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A zero-initialised, cache-line aligned `[f32]` of fixed length.
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    pub(crate) fn zeroed(len: usize) -> Self {
        AlignedBuf {
            lines: vec![Line([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }

    /// A buffer holding `values` followed by zeros up to `len`.
    pub(crate) fn from_slice_padded(values: &[f32], len: usize) -> Self {
        let mut buf = AlignedBuf::zeroed(len.max(values.len()));
        buf.as_mut_slice()[..values.len()].copy_from_slice(values);
        buf
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` around `[f32; 16]` with size 64 = 16 * 4, so `lines` is
        // `16 * lines.len() >= len` contiguous, initialised f32 values.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast::<f32>(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast::<f32>(), self.len) }
    }

    pub(crate) fn as_ptr(&self) -> *const f32 {
        self.lines.as_ptr().cast::<f32>()
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut f32 {
        self.lines.as_mut_ptr().cast::<f32>()
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} floats)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_padded() {
        let buf = AlignedBuf::from_slice_padded(&[1.0, 2.0, 3.0], 20);
        assert_eq!(buf.as_ptr() as usize % 64, 0);
        assert_eq!(buf.len(), 20);
        assert_eq!(&buf.as_slice()[..4], &[1.0, 2.0, 3.0, 0.0]);
    }
}
