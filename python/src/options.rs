//! The keywords every mode's constructor shares (`model`, `threads`, `backend`, `variant`,
//! `fit`, `kernels`, `confidence`), checked once and turned into the library's options (a
//! backend's, or a started pipeline's for the live and stream modes), and where the model is
//! when none is named: the package inside the wheel.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gss::engine::reuse::Reuse;
use gss::engine::{create_backend, BackendKind, BackendOptions, Kernels};
use gss::locate::{first_existing, Candidate};
use gss::pipeline::{Mode, PipelineOptions, Policy, Subscription};
use gss::{Fit, ModelPackage, Pipeline};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::to_py;

/// The bundled package's place inside the installed `gss` package.
const BUNDLED: &str = "models/gss-edge-street8";

static MODULE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Remembers where the extension module was loaded from: the bundled model lies beside it.
pub fn set_module_dir(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let file: PathBuf = m.getattr("__file__")?.extract()?;
    if let Some(dir) = file.parent() {
        let _ = MODULE_DIR.set(dir.to_path_buf());
    }
    Ok(())
}

/// Where the bundled model is: `$GSS_MODEL` when set, else the copy in the wheel.
pub fn bundled_model() -> gss::Result<PathBuf> {
    let mut candidates: Vec<Candidate> = Candidate::from_env("GSS_MODEL").into_iter().collect();
    if let Some(dir) = MODULE_DIR.get() {
        candidates.push(Candidate::new(
            dir.join(BUNDLED),
            "inside the installed gss package",
        ));
    }
    first_existing(
        "the bundled model",
        &candidates,
        "name a package: gss.Segmenter(\"path/to/package\"), or set GSS_MODEL",
    )
}

/// The constructor keywords, checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub model_dir: PathBuf,
    /// None: every core.
    pub threads: Option<usize>,
    pub backend: BackendKind,
    pub variant: Option<String>,
    /// None: the package's own fit.
    pub fit: Option<Fit>,
    pub kernels: Kernels,
    /// None: when the package's prior gives token logits.
    pub confidence: Option<bool>,
}

fn parsed<T: std::str::FromStr<Err = String>>(what: &str, value: &str) -> PyResult<T> {
    value
        .parse()
        .map_err(|e: String| PyValueError::new_err(format!("{what}: {e}")))
}

impl Settings {
    #[allow(clippy::too_many_arguments)]
    pub fn parse(
        model: Option<PathBuf>,
        threads: Option<usize>,
        backend: &str,
        variant: Option<String>,
        fit: Option<&str>,
        kernels: &str,
        confidence: Option<bool>,
    ) -> PyResult<Self> {
        let backend: BackendKind = parsed("backend", backend)?;
        if backend == BackendKind::Wgpu && !cfg!(feature = "wgpu") {
            return Err(PyValueError::new_err(
                "backend: this gss was built without the GPU backend; rebuild it with \
                 MATURIN_PEP517_ARGS=\"--features wgpu\" pip install ./python, or use \
                 backend=\"cpu\"",
            ));
        }
        if threads == Some(0) {
            return Err(PyValueError::new_err(
                "threads: must be at least 1 (None: every core)",
            ));
        }
        let model_dir = match model {
            Some(dir) => dir,
            None => bundled_model().map_err(to_py)?,
        };
        Ok(Self {
            model_dir,
            threads,
            backend,
            variant,
            fit: fit.map(|f| parsed("fit", f)).transpose()?,
            kernels: parsed("kernels", kernels)?,
            confidence,
        })
    }

    pub fn open(&self) -> gss::Result<ModelPackage> {
        ModelPackage::open(&self.model_dir)
    }

    /// Backend options for `package` with `threads` per backend (0: every core).
    pub fn backend_options(&self, package: &ModelPackage, threads: usize) -> BackendOptions {
        BackendOptions {
            kind: self.backend,
            variant: self.variant.clone(),
            threads,
            kernels: self.kernels,
            confidence: self
                .confidence
                .unwrap_or(!package.manifest.prior.argmax_in_graph()),
            // Every frame decoded in full, as `gss segment` and `gss bench` do: a stream's token
            // reuse pays only between consecutive camera frames.
            reuse: Reuse::Off,
            ..BackendOptions::default()
        }
    }

    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }
}

/// A pipeline for `settings`, started on `source`, with one subscription: the live mode's and
/// the stream mode's. `mode` is `gss stream --mode`'s: "auto", "pipelined" or "sequential".
pub fn start_pipeline(
    settings: &Settings,
    mode: &str,
    frame_size: Option<(u32, u32)>,
    policy: Policy,
    keep_frames: bool,
    source: impl gss::FrameSource + 'static,
) -> PyResult<(Pipeline, Subscription, ModelInfo, [usize; 2])> {
    let mode = match mode {
        "pipelined" => Mode::Pipelined,
        "sequential" => Mode::Sequential,
        "auto" => Mode::auto(settings.threads),
        other => {
            return Err(PyValueError::new_err(format!(
                "mode: unknown mode {other:?}; expected \"auto\", \"pipelined\" or \"sequential\""
            )))
        }
    };
    let start = || -> gss::Result<_> {
        let (package, fit) = settings.open()?.fitted(settings.fit, frame_size)?;
        let options = settings.backend_options(&package, mode.stage_threads(settings.threads));
        let info = ModelInfo::new(&package);
        let grid = package.manifest.prior.grid;
        let pipeline_options = PipelineOptions {
            policy,
            mode,
            queue_depth: 1,
            keep_frames,
            fit: Some(fit),
        };
        let mut pipeline = Pipeline::new(package, pipeline_options, |package, graphs| {
            create_backend(package, &options, graphs)
        })?;
        // Real time: the callback gets the newest result; lossless: the iterator takes results at
        // its own pace and the pipeline waits for it.
        let capacity = if policy == Policy::RealTime { 1 } else { 4 };
        let subscription = pipeline.subscribe(capacity, policy);
        pipeline.run(source)?;
        Ok((pipeline, subscription, info, grid))
    };
    start().map_err(to_py)
}

/// One class of a package, as its manifest names it.
#[pyclass(module = "gss", frozen, get_all)]
#[derive(Debug, Clone)]
pub struct ClassInfo {
    pub id: u32,
    pub name: String,
    /// Display colour, (R, G, B).
    pub color: (u8, u8, u8),
}

#[pymethods]
impl ClassInfo {
    fn __repr__(&self) -> String {
        format!(
            "ClassInfo(id={}, name={:?}, color={:?})",
            self.id, self.name, self.color
        )
    }
}

/// What every segmenter (`Segmenter`, `LiveSegmenter`, `Stream`) tells of its package: the
/// classes and their display colours. The base class of the three.
#[pyclass(module = "gss", subclass, frozen)]
pub struct ModelInfo {
    classes: Vec<ClassInfo>,
}

impl ModelInfo {
    pub fn new(package: &ModelPackage) -> Self {
        Self {
            classes: class_infos(package),
        }
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }
}

#[pymethods]
impl ModelInfo {
    /// The package's classes: id, name and display colour.
    #[getter]
    fn classes(&self) -> Vec<ClassInfo> {
        self.classes.clone()
    }

    /// Display colour of each class, (R, G, B), indexed by class id: what `gss.overlay` takes.
    #[getter]
    fn colors(&self) -> Vec<(u8, u8, u8)> {
        self.classes.iter().map(|c| c.color).collect()
    }
}

pub fn class_infos(package: &ModelPackage) -> Vec<ClassInfo> {
    package
        .manifest
        .classes
        .iter()
        .map(|c| ClassInfo {
            id: c.id,
            name: c.name.clone(),
            color: (c.color[0], c.color[1], c.color[2]),
        })
        .collect()
}

/// The classes of a package (None: the bundled one), read from its manifest.
#[pyfunction]
#[pyo3(signature = (model = None))]
pub fn classes(py: Python<'_>, model: Option<PathBuf>) -> PyResult<Vec<ClassInfo>> {
    py.detach(|| {
        let dir = match model {
            Some(dir) => dir,
            None => bundled_model()?,
        };
        Ok(class_infos(&ModelPackage::open(dir)?))
    })
    .map_err(to_py)
}
