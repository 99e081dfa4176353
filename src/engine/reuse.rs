//! Token reuse: which parts of the token grid to decode again when only some tokens changed.
//!
//! A maskige pixel depends only on the tokens within the decoder's receptive field, which the
//! package states as `decoder.halo` (token cells each side, read from the graph at export). The
//! grid is cut into fixed tiles; a tile is decoded again only if a changed token lies within
//! `halo` cells of it, and then from a window of the grid that extends the tile by `halo` cells
//! each side (clipped at the grid's edges, where the full decode's zero padding is the window's
//! own). Inside that window the tile's pixels see exactly the tokens and padding a full decode
//! gives them, so the tile comes out as a full decode would make it; the rest of the last maskige
//! is kept. Fixed tiles keep the number of window shapes, and so of planned graphs, small.
//!
//! This module is the geometry; [`super::stream`] runs the windows on any backend.

use std::str::FromStr;

/// `gss stream --reuse`: decode only what changed, or every frame in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reuse {
    /// Every frame decoded in full.
    Off,
    /// Re-decode the tiles near changed tokens when that is cheaper than a full decode, for a
    /// package that states `decoder.halo` on a backend that decodes windows (both do); else
    /// decode in full. The default for the library as for `gss stream`: the masks are exactly
    /// a full decode's.
    #[default]
    Auto,
    /// Re-decode the tiles near changed tokens even when a full decode would be cheaper: for
    /// measuring what reuse costs and checking it against full decodes.
    Always,
}

impl FromStr for Reuse {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "off" => Ok(Reuse::Off),
            "auto" => Ok(Reuse::Auto),
            "always" => Ok(Reuse::Always),
            _ => Err(format!(
                "unknown reuse mode {s:?}; expected auto, always or off"
            )),
        }
    }
}

/// Cells `[y0, y1) × [x0, x1)` of the token grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CellRect {
    pub y0: usize,
    pub y1: usize,
    pub x0: usize,
    pub x1: usize,
}

impl CellRect {
    pub fn height(&self) -> usize {
        self.y1 - self.y0
    }

    pub fn width(&self) -> usize {
        self.x1 - self.x0
    }

    pub fn cells(&self) -> usize {
        self.height() * self.width()
    }
}

/// One tile: the cells it refreshes and the window decoded to refresh them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub core: CellRect,
    pub window: CellRect,
}

/// A grid cut into tiles of `tile`×`tile` cells (smaller at the far edges), each with its window.
#[derive(Debug, Clone)]
pub struct TileLayout {
    grid: [usize; 2],
    tile: usize,
    halo: usize,
    tiles_x: usize,
    tiles: Vec<Tile>,
}

impl TileLayout {
    pub fn new(grid: [usize; 2], tile: usize, halo: usize) -> Self {
        let tile = tile.max(1);
        let [h, w] = grid;
        let (tiles_y, tiles_x) = (h.div_ceil(tile), w.div_ceil(tile));
        let mut tiles = Vec::with_capacity(tiles_y * tiles_x);
        for ty in 0..tiles_y {
            for tx in 0..tiles_x {
                let core = CellRect {
                    y0: ty * tile,
                    y1: ((ty + 1) * tile).min(h),
                    x0: tx * tile,
                    x1: ((tx + 1) * tile).min(w),
                };
                let window = CellRect {
                    y0: core.y0.saturating_sub(halo),
                    y1: (core.y1 + halo).min(h),
                    x0: core.x0.saturating_sub(halo),
                    x1: (core.x1 + halo).min(w),
                };
                tiles.push(Tile { core, window });
            }
        }
        Self {
            grid,
            tile,
            halo,
            tiles_x,
            tiles,
        }
    }

    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    pub fn grid(&self) -> [usize; 2] {
        self.grid
    }

    /// The distinct window shapes (height, width), each of which needs a plan.
    pub fn window_shapes(&self) -> Vec<[usize; 2]> {
        let mut shapes: Vec<[usize; 2]> = self
            .tiles
            .iter()
            .map(|t| [t.window.height(), t.window.width()])
            .collect();
        shapes.sort_unstable();
        shapes.dedup();
        shapes
    }

    /// Indices of the tiles that a change from `previous` to `current` (two grids of this
    /// layout's size) reaches, ascending, into `dirty`.
    pub fn dirty_tiles_into(
        &self,
        previous: &[i64],
        current: &[i64],
        marks: &mut Vec<bool>,
        dirty: &mut Vec<usize>,
    ) {
        let [h, w] = self.grid;
        debug_assert!(previous.len() == h * w && current.len() == h * w);
        marks.clear();
        marks.resize(self.tiles.len(), false);
        for (i, _) in previous
            .iter()
            .zip(current)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
        {
            let (y, x) = (i / w, i % w);
            // Tiles whose core lies within `halo` cells of (y, x).
            let (ty0, ty1) = (
                y.saturating_sub(self.halo) / self.tile,
                (y + self.halo).min(h - 1) / self.tile,
            );
            let (tx0, tx1) = (
                x.saturating_sub(self.halo) / self.tile,
                (x + self.halo).min(w - 1) / self.tile,
            );
            for ty in ty0..=ty1 {
                for tx in tx0..=tx1 {
                    marks[ty * self.tiles_x + tx] = true;
                }
            }
        }
        dirty.clear();
        dirty.extend(marks.iter().enumerate().filter(|(_, &m)| m).map(|(i, _)| i));
    }

    /// Token cells the windows of `dirty` decode, as a share of the grid's: what decoding them
    /// costs against one full decode, roughly (the windows overlap, and each call has a fixed
    /// cost of its own).
    pub fn decoded_share(&self, dirty: &[usize]) -> f32 {
        let cells: usize = dirty.iter().map(|&i| self.tiles[i].window.cells()).sum();
        cells as f32 / (self.grid[0] * self.grid[1]).max(1) as f32
    }
}

/// Copies window tokens out of a row-major grid `width` cells wide.
pub fn window_tokens_into(grid: &[i64], width: usize, window: CellRect, out: &mut Vec<i64>) {
    out.clear();
    for y in window.y0..window.y1 {
        out.extend_from_slice(&grid[y * width + window.x0..y * width + window.x1]);
    }
}

/// Writes the part of a window's decoded maskige (3 × window·s) that belongs to `core` into the
/// frame's maskige (3 × grid·s), `s` pixels per cell.
pub fn paste_core(
    window_maskige: &[f32],
    window: CellRect,
    core: CellRect,
    grid: [usize; 2],
    s: usize,
    maskige: &mut [f32],
) {
    let (frame_h, frame_w) = (grid[0] * s, grid[1] * s);
    let (win_h, win_w) = (window.height() * s, window.width() * s);
    let (x0, x1) = (core.x0 * s, core.x1 * s);
    let dx = window.x0 * s;
    for c in 0..3 {
        for y in core.y0 * s..core.y1 * s {
            let src = c * win_h * win_w + (y - window.y0 * s) * win_w;
            let dst = c * frame_h * frame_w + y * frame_w;
            maskige[dst + x0..dst + x1]
                .copy_from_slice(&window_maskige[src + x0 - dx..src + x1 - dx]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dirty tiles by the definition: any changed cell within `halo` (Chebyshev) of the core.
    fn dirty_by_definition(layout: &TileLayout, previous: &[i64], current: &[i64]) -> Vec<usize> {
        let [_, w] = layout.grid;
        let halo = layout.halo as isize;
        layout
            .tiles
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                previous.iter().zip(current).enumerate().any(|(i, (a, b))| {
                    let (y, x) = ((i / w) as isize, (i % w) as isize);
                    a != b
                        && y >= t.core.y0 as isize - halo
                        && y < t.core.y1 as isize + halo
                        && x >= t.core.x0 as isize - halo
                        && x < t.core.x1 as isize + halo
                })
            })
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn tiles_cover_the_grid_once_and_windows_extend_them_by_the_halo() {
        let layout = TileLayout::new([10, 13], 4, 2);
        let mut covered = [0u8; 10 * 13];
        for t in layout.tiles() {
            for y in t.core.y0..t.core.y1 {
                for x in t.core.x0..t.core.x1 {
                    covered[y * 13 + x] += 1;
                }
            }
            assert_eq!(t.window.y0, t.core.y0.saturating_sub(2));
            assert_eq!(t.window.x1, (t.core.x1 + 2).min(13));
        }
        assert!(covered.iter().all(|&c| c == 1));
        assert_eq!(layout.tiles().len(), 3 * 4);
    }

    #[test]
    fn dirty_tiles_match_the_definition() {
        let layout = TileLayout::new([12, 20], 4, 3);
        let mut state = 7u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let (mut marks, mut dirty) = (Vec::new(), Vec::new());
        for changes in [0, 1, 2, 5, 40] {
            let previous: Vec<i64> = (0..240).map(|i| i % 9).collect();
            let mut current = previous.clone();
            for _ in 0..changes {
                current[next() % 240] += 1;
            }
            layout.dirty_tiles_into(&previous, &current, &mut marks, &mut dirty);
            assert_eq!(
                dirty,
                dirty_by_definition(&layout, &previous, &current),
                "{changes} changes"
            );
        }
        let same: Vec<i64> = vec![3; 240];
        layout.dirty_tiles_into(&same, &same, &mut marks, &mut dirty);
        assert!(dirty.is_empty());
        assert_eq!(layout.decoded_share(&dirty), 0.0);
    }

    #[test]
    fn a_window_pasted_back_puts_each_core_pixel_where_the_full_grid_has_it() {
        // A "decoder" that paints every pixel with its own frame coordinates: pasting a window's
        // core must reproduce the frame's values there.
        let (grid, s) = ([6, 9], 2);
        let (fh, fw) = (grid[0] * s, grid[1] * s);
        let value = |c: usize, y: usize, x: usize| (c * 10_000 + y * 100 + x) as f32;
        let layout = TileLayout::new(grid, 4, 1);
        let mut maskige = vec![-1.0; 3 * fh * fw];
        for t in layout.tiles() {
            let (wh, ww) = (t.window.height() * s, t.window.width() * s);
            let window: Vec<f32> = (0..3 * wh * ww)
                .map(|i| {
                    value(
                        i / (wh * ww),
                        t.window.y0 * s + (i / ww) % wh,
                        t.window.x0 * s + i % ww,
                    )
                })
                .collect();
            paste_core(&window, t.window, t.core, grid, s, &mut maskige);
        }
        for (i, &v) in maskige.iter().enumerate() {
            assert_eq!(v, value(i / (fh * fw), (i / fw) % fh, i % fw));
        }
    }

    #[test]
    fn window_tokens_are_the_rows_of_the_window() {
        let grid: Vec<i64> = (0..20).collect();
        let mut out = Vec::new();
        window_tokens_into(
            &grid,
            5,
            CellRect {
                y0: 1,
                y1: 3,
                x0: 2,
                x1: 4,
            },
            &mut out,
        );
        assert_eq!(out, vec![7, 8, 12, 13]);
    }

    #[test]
    fn reuse_modes_parse() {
        assert_eq!("auto".parse::<Reuse>(), Ok(Reuse::Auto));
        assert_eq!("OFF".parse::<Reuse>(), Ok(Reuse::Off));
        assert!("sometimes".parse::<Reuse>().is_err());
    }
}
