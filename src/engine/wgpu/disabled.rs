//! The GPU backend in a build without the `wgpu` feature: no adapter is listed, and building the
//! backend is an error that says how to get a build that can.

use super::AdapterSummary;
use crate::engine::{BackendOptions, Graphs};
use crate::error::{Error, Result};
use crate::model::ModelPackage;

const REBUILD: &str =
    "this gss was built without the `wgpu` feature; rebuild with --features wgpu or use --backend cpu";

fn rebuild() -> Error {
    Error::Gpu {
        msg: REBUILD.into(),
    }
}

/// The GPU backend. In this build none can be built, so no value of this type exists.
pub struct WgpuBackend {
    never: std::convert::Infallible,
}

impl WgpuBackend {
    /// Always an error in this build: the GPU backend needs the `wgpu` feature.
    pub fn new(_package: &ModelPackage, _variant: Option<&str>) -> Result<Self> {
        Err(rebuild())
    }

    /// Always an error in this build, as [`WgpuBackend::new`].
    pub fn with_options(
        _package: &ModelPackage,
        _options: &BackendOptions,
        _graphs: Graphs,
    ) -> Result<Self> {
        Err(rebuild())
    }
}

impl crate::engine::Backend for WgpuBackend {
    fn name(&self) -> &str {
        match self.never {}
    }
    fn run_prior(&mut self, _: &[f32], _: &mut Vec<i64>) -> Result<()> {
        match self.never {}
    }
    fn run_decoder(&mut self, _: &[i64], _: &mut Vec<f32>) -> Result<()> {
        match self.never {}
    }
}

/// No adapter in this build.
pub fn adapters() -> Vec<AdapterSummary> {
    Vec::new()
}

/// No adapter in this build.
pub fn default_adapter() -> Option<AdapterSummary> {
    None
}

/// Always an error in this build: nothing runs on the GPU.
pub fn check_coverage(_package: &ModelPackage, _variant: Option<&str>) -> Result<()> {
    Err(rebuild())
}

/// Never in this build.
pub fn is_covered(_package: &ModelPackage, _variant: Option<&str>) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gpu_backend_says_how_to_enable_it() {
        let package = ModelPackage::open(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/gss-tiny"
        ))
        .unwrap();
        let err = WgpuBackend::new(&package, None).err().unwrap();
        assert!(err.to_string().contains("--features wgpu"), "{err}");
        assert!(adapters().is_empty() && default_adapter().is_none());
    }
}
