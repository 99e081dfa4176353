//! [`Fit`]: how a frame of another aspect ratio is fitted to the model's input. The package
//! states its choice (`input.fit`) and a stream may override it; the geometry that carries it
//! out lives in [`crate::frame_path::geometry`].

use serde::Deserialize;

/// How a frame whose aspect ratio differs from the model's is fitted to the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Scale each axis on its own: the whole frame is seen, objects are squashed.
    #[default]
    Stretch,
    /// Scale to cover the input and cut the overflow off both sides: no distortion, the cut
    /// part of the frame is [`UNSEEN`](crate::frame_path::UNSEEN) in the class map.
    Crop,
    /// Scale to fit inside the input and pad: no distortion, the whole frame is seen, at fewer
    /// input pixels.
    Letterbox,
    /// Run the graphs at an input size of the frame's own aspect ratio (packages with
    /// `input.size_multiple` only; [`crate::ModelPackage::native_size_for`]); what remains is
    /// a stretch of a few percent.
    Native,
}

impl Fit {
    pub const ALL: [Fit; 4] = [Fit::Stretch, Fit::Crop, Fit::Letterbox, Fit::Native];

    pub fn name(self) -> &'static str {
        match self {
            Fit::Stretch => "stretch",
            Fit::Crop => "crop",
            Fit::Letterbox => "letterbox",
            Fit::Native => "native",
        }
    }
}

impl std::fmt::Display for Fit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Fit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Fit::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown fit {s:?}; expected stretch, crop, letterbox or native")
            })
    }
}
