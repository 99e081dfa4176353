"""`gss-convert`: the offline tool's command line (data, train, eval, export, inverse, train-inverse,
export-baseline, eval-onnx, quantize, verify, reference, bench, macs, import-official)."""

from __future__ import annotations

import argparse
import json
import linecache
import sys
import time
from pathlib import Path

from . import __version__


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected HxW, e.g. 256x512") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"size {text!r}: both sides must be positive")
    return h, w


def _splits(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in text.split(","):
        try:
            name, count = part.split("=")
            out[name.strip()] = int(count)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"split {part!r}: expected NAME=COUNT, e.g. train=1600,val=100,test=200"
            ) from None
    return out


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        default="auto",
        choices=["auto", "cpu", "cuda"],
        help="CUDA with mixed precision when available (auto), else the CPU",
    )
    p.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch (default: all cores)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gss-convert", description=__doc__)
    parser.add_argument("--version", action="version", version=f"gss-convert {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="let errors through with their Python traceback instead of a one-line message",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True
    )
    synth = data.add_parser("synth", help="generate the street8 synthetic dataset")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--size", type=_size, default=(256, 512), help="HxW (default 256x512)")
    synth.add_argument("--split", type=_splits, default={"train": 1600, "val": 100, "test": 200})
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--sequence",
        type=int,
        default=None,
        help="write N consecutive frames of a forward-moving camera instead",
    )
    synth.add_argument(
        "--speed",
        type=float,
        default=None,
        help="with --sequence: the camera's metres per frame, 0 for a parked camera "
        "(default: drawn, 0.35-1.1)",
    )
    synth.add_argument("--format", choices=["png", "jpg"], default="png", help="image file format")
    synth.add_argument("--workers", type=int, default=2)
    # names checked when run (gss_convert.data.synth.DOMAINS), so building the parser stays import-free
    synth.add_argument(
        "--domain",
        default="street8",
        metavar="NAME",
        help="look of the images: street8 (the training domain, default), shift (per image a "
        "mix of fog, dusk, camera height/pitch and held-out textures, for cross-domain "
        "tests), or one shift alone: fog, dusk, camera, texture",
    )
    check = data.add_parser("check", help="load every sample of a split and report problems")
    check.add_argument("root", type=Path)
    check.add_argument("--split", default="train")
    check.add_argument(
        "--layout", default="auto", choices=["auto", "folder", "cityscapes", "ade20k"]
    )
    synth.set_defaults(func=_data_synth)
    check.set_defaults(func=_data_check)

    train = sub.add_parser("train", help="train GSS-edge stages and the baseline")
    train.add_argument(
        "stage",
        choices=["stage1", "stage2", "baseline", "all"],
        help="stage1 = VQ-VAE posterior, stage2 = prior, baseline = discriminative",
    )
    train.add_argument(
        "--config", default="default", help="YAML file or bundled name (default, tiny)"
    )
    train.add_argument(
        "--data", type=Path, required=True, help="dataset root (shared folder format)"
    )
    train.add_argument(
        "--out", type=Path, required=True, help="run directory for checkpoints and logs"
    )
    train.add_argument("--resume", action="store_true", help="continue from *_last.pt checkpoints")
    train.add_argument(
        "--max-train", type=int, default=None, help="use only the first N training images"
    )
    train.add_argument(
        "--decoder-from",
        type=Path,
        default=None,
        metavar="PACKAGE",
        help="stage1: keep this model package's decoder and codebook frozen and train only "
        "the encoder, so a new prior runs with that decoder unchanged",
    )
    _add_device(train)
    train.set_defaults(func=_train)

    ev = sub.add_parser("eval", help="mIoU of the posterior upper bound, GSS prior and baseline")
    ev.add_argument("--run", type=Path, required=True, help="run directory written by `train`")
    ev.add_argument("--data", type=Path, required=True)
    ev.add_argument("--split", default="test")
    ev.add_argument("--layout", default="auto", choices=["auto", "folder", "cityscapes", "ade20k"])
    ev.add_argument("--out", type=Path, default=None, help="default: RUN/eval-SPLIT")
    ev.add_argument("--panels", type=int, default=6, help="PNG panels to write")
    ev.add_argument("--max-images", type=int, default=None)
    ev.add_argument("--batch-size", type=int, default=8)
    _add_device(ev)
    ev.set_defaults(func=_eval)

    exp = sub.add_parser(
        "export", help="write a model package (prior.onnx, decoder.onnx, model.json)"
    )
    exp.add_argument("run", type=Path, help="run directory with prior.pt (stage 2)")
    exp.add_argument("--out", type=Path, required=True, help="package directory, e.g. models/NAME")
    exp.add_argument("--name", default=None, help="model name (default: the directory name)")
    exp.add_argument(
        "--metrics", type=Path, default=None, help="metrics.json from `gss-convert eval` to record"
    )
    exp.add_argument(
        "--argmax",
        choices=["runtime", "graph"],
        default="runtime",
        help="runtime (default): the prior ends with token logits and gss takes the argmax, "
        "several times faster than tract's ArgMax node; graph: ArgMax inside prior.onnx",
    )
    exp.set_defaults(func=_export)

    lg = sub.add_parser(
        "logits",
        help="make a package whose prior ends with its ArgMax end with the token logits "
        "instead (every variant; model.json re-stamped; checked with onnxruntime)",
    )
    lg.add_argument("package", type=Path)
    lg.set_defaults(func=_logits)

    inv = sub.add_parser("inverse", help="write the package's nearest-colour X⁻¹ as an ONNX graph")
    inv.add_argument("package", type=Path)
    inv.add_argument("--out", type=Path, default=None, help="default: PACKAGE/inverse.onnx")
    inv.add_argument(
        "--install",
        action="store_true",
        help="switch the package's model.json to the inverse written (or given with --from)",
    )
    inv.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        metavar="FILE.onnx",
        help="instead of writing the nearest-colour graph, install this inverse (e.g. from "
        "`train-inverse`; its FILE.json gives cost.inverse_gmac) as PACKAGE/<its name>",
    )
    inv.add_argument(
        "--kind",
        choices=["auto", "linear", "onnx"],
        default="auto",
        help="with --from: how the package holds it. linear: the weights of a graph that is one "
        "1x1 conv + argmax go into model.json and the runtime's own loop runs them (the cost of "
        "nearest colour); onnx: the graph, run on tract; auto (default): linear when it can be",
    )
    inv.set_defaults(func=_inverse)

    ti = sub.add_parser(
        "train-inverse",
        help="GSS-FT: train a small X⁻¹ network on the package's decoded "
        "maskiges and export it as ONNX (argmax inside the graph)",
    )
    ti.add_argument(
        "package", type=Path, help="model package whose prior + decoder make the training maskiges"
    )
    ti.add_argument("--data", type=Path, required=True, help="dataset root with the labels")
    ti.add_argument("--split", default="train", help="split to decode and fit on (default train)")
    ti.add_argument(
        "--val-split",
        default="val",
        help="split also scored, nearest colour vs trained ('' for none)",
    )
    ti.add_argument(
        "--out",
        type=Path,
        required=True,
        help="the ONNX file; beside it FILE.pt (weights) and FILE.json (report) unless it is in the package",
    )
    ti.add_argument(
        "--install",
        action="store_true",
        help="switch the package's model.json to it: as a linear inverse when it is one 1x1 conv "
        "(the default network), else as the ONNX graph copied into the package",
    )
    ti.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the decoded maskiges here (maskiges-SPLIT.npz), reused while the package is unchanged",
    )
    ti.add_argument("--max-images", type=int, default=None)
    ti.add_argument(
        "--hidden",
        type=int,
        default=0,
        help="channels of a residual conv branch beside the palette 1x1 conv (default 0: none)",
    )
    ti.add_argument(
        "--kernel", type=int, default=3, help="kernel of the branch's first conv (1: per pixel)"
    )
    ti.add_argument("--layers", type=int, default=0, help="extra 1x1 hidden layers")
    ti.add_argument("--iters", type=int, default=3000)
    ti.add_argument("--batch-size", type=int, default=16)
    ti.add_argument("--crop", type=int, default=96)
    ti.add_argument("--lr", type=float, default=5e-3)
    ti.add_argument("--seed", type=int, default=0)
    ti.add_argument(
        "--class-weight-power",
        type=float,
        default=0.0,
        help="cross-entropy class weight = frequency^-P (0: unweighted)",
    )
    ti.add_argument(
        "--argmax",
        choices=["chain", "node"],
        default="chain",
        help="chain (default): element-wise Greater/Max/Where steps, which tract runs several times "
        "faster than node: one ONNX ArgMax over the class channels",
    )
    ti.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action="store_false",
        help="skip the per-class logit offsets fitted for train mIoU after training",
    )
    ti.add_argument(
        "--threads", type=int, default=None, help="CPU threads for PyTorch and onnxruntime"
    )
    ti.set_defaults(func=_train_inverse)

    eb = sub.add_parser(
        "export-baseline", help="a run's discriminative baseline as one class-map ONNX graph"
    )
    eb.add_argument("run", type=Path, help="run directory with baseline.pt")
    eb.add_argument(
        "--out", type=Path, required=True, help="the ONNX file (FILE.json describes it)"
    )
    eb.set_defaults(func=_export_baseline)

    eo = sub.add_parser(
        "eval-onnx", help="mIoU of a class-map ONNX graph or a model package with onnxruntime"
    )
    eo.add_argument(
        "model",
        type=Path,
        help="class-map .onnx (image 0..255 [1,3,h,w] -> class ids) or a package directory",
    )
    eo.add_argument("--data", type=Path, required=True)
    eo.add_argument("--split", default="test")
    eo.add_argument("--layout", default="auto", choices=["auto", "folder", "cityscapes", "ade20k"])
    eo.add_argument(
        "--fit",
        default=None,
        choices=["stretch", "crop", "letterbox"],
        help="default: the package's fit (native runs as stretch at the exported size), else stretch",
    )
    eo.add_argument("--max-images", type=int, default=None)
    eo.add_argument("--threads", type=int, default=0, help="onnxruntime threads (0: its default)")
    eo.add_argument(
        "--json",
        action="store_true",
        help="print the report as JSON (the keys of `gss eval --json`)",
    )
    eo.set_defaults(func=_eval_onnx)

    ver = sub.add_parser("verify", help="onnxruntime vs PyTorch agreement and mIoU of a package")
    ver.add_argument("package", type=Path)
    ver.add_argument(
        "--run", type=Path, required=True, help="the run the package was exported from"
    )
    ver.add_argument("--data", type=Path, required=True)
    ver.add_argument("--split", default="test")
    ver.add_argument("--max-images", type=int, default=None)
    ver.add_argument("--variant", default=None, help="a variant listed in model.json, e.g. int8")
    ver.add_argument(
        "--fixtures",
        type=Path,
        default=None,
        help="also write Rust reference outputs for the first few images here",
    )
    ver.add_argument("--fixture-images", type=int, default=4)
    ver.set_defaults(func=_verify)

    ref = sub.add_parser(
        "reference", help="onnxruntime reference outputs for one frame of any size, per fit policy"
    )
    ref.add_argument("package", type=Path)
    ref.add_argument(
        "--image", type=Path, required=True, help="the frame (any size; copied to OUT/frame.png)"
    )
    ref.add_argument(
        "--out", type=Path, required=True, help="writes reference.json, *.classes.png, *.tokens.u16"
    )
    ref.add_argument(
        "--fit",
        default="stretch,crop,letterbox",
        help="comma-separated fit policies (stretch, crop, letterbox; default all three)",
    )
    ref.add_argument("--variant", default=None, help="a variant listed in model.json, e.g. int8")
    ref.set_defaults(func=_reference)

    qu = sub.add_parser("quantize", help="add int8 variants calibrated on real frames")
    qu.add_argument("package", type=Path)
    qu.add_argument(
        "--calib", type=Path, required=True, help="dataset root with calibration frames"
    )
    qu.add_argument("--split", default="train")
    qu.add_argument("--images", type=int, default=64)
    qu.add_argument("--format", choices=["qdq", "qoperator"], default="qdq")
    qu.set_defaults(func=_quantize)

    be = sub.add_parser("bench", help="onnxruntime speed of every variant of a package (median ms)")
    be.add_argument("package", type=Path)
    be.add_argument("--threads", type=int, default=1)
    be.add_argument("--runs", type=int, default=20)
    be.set_defaults(func=_bench)

    macs = sub.add_parser("macs", help="MACs and parameters per part for a config")
    macs.add_argument("--config", default="default")
    macs.add_argument("--json", action="store_true")
    macs.set_defaults(func=_macs)

    imp = sub.add_parser(
        "import-official",
        help="an official GSS-FF checkpoint (fudan-zvg/GSS) as a model package "
        "(a reference model, not an edge model)",
    )
    imp.add_argument(
        "checkpoint", type=Path, help="the mmseg .pth of GSS-FF (dict with state_dict)"
    )
    imp.add_argument("--arch", required=True, choices=["r101", "swin-l"], help="its backbone")
    imp.add_argument(
        "--dataset",
        required=True,
        choices=["cityscapes", "ade20k"],
        help="what it was trained on: classes, maskige palette and normalisation of that config",
    )
    imp.add_argument(
        "--out",
        type=Path,
        required=True,
        help="package directory, e.g. models/gss-ff-r101-cityscapes",
    )
    imp.add_argument(
        "--input-size",
        type=_size,
        default=None,
        help="HxW the graphs are exported at, multiples of 32 (default: cityscapes 512x1024, ade20k 512x512)",
    )
    imp.add_argument(
        "--dvae-decoder",
        type=Path,
        default=None,
        metavar="PATH",
        help="the DALL-E decoder: decoder.pkl or a state dict of it (default: the copy inside the "
        "checkpoint, decode_head.d_vae.decoder.*)",
    )
    imp.add_argument("--name", default=None, help="model name (default: the directory name)")
    imp.set_defaults(func=_import_official)
    return parser


_PACKAGE_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.debug:  # nothing caught: every error keeps its traceback
        return args.func(args)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as e:
        from .utils import setup_logging

        setup_logging(None)
        print(f"gss-convert: error: {e}", file=sys.stderr)
        if not _raised_by_gss_convert(e):
            print(
                f"gss-convert: that {type(e).__name__} came from a library, not from a check of "
                "gss-convert's own; unless it points at your input it may be a bug, and "
                "`gss-convert --debug ...` shows the traceback",
                file=sys.stderr,
            )
        return 2
    except KeyboardInterrupt:
        print("gss-convert: interrupted (use --resume to continue training)", file=sys.stderr)
        return 130


def _last_frame(e: BaseException):
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb


def _raised_by_gss_convert(e: BaseException) -> bool:
    """Whether `e` comes from a `raise` statement of gss_convert itself, a message written for the
    person at the command line (a missing file, a bad option, a package that fails its checks),
    rather than from inside torch, numpy or onnxruntime. A missing file is always the former."""
    if isinstance(e, FileNotFoundError):
        return True
    tb = _last_frame(e)
    if tb is None:
        return False
    path = Path(tb.tb_frame.f_code.co_filename).resolve()
    return _PACKAGE_DIR in path.parents and linecache.getline(
        str(path), tb.tb_lineno
    ).lstrip().startswith("raise")


# One handler per subcommand, registered with `set_defaults(func=...)` in build_parser. Each imports
# what it needs when it runs, so building the parser (and `--help`) stays quick.


def _data_synth(args: argparse.Namespace) -> int:
    from .data.synth import generate_dataset, get_domain
    from .utils import log, setup_logging

    setup_logging(None, args.verbose)
    domain = get_domain(args.domain)  # an unknown name fails here, before anything is written
    t0 = time.perf_counter()
    splits = {"seq": args.sequence} if args.sequence else args.split
    cases = generate_dataset(
        args.out,
        args.size,
        splits,
        args.seed,
        sequence=args.sequence,
        workers=args.workers,
        image_format=args.format,
        domain=domain,
        speed=args.speed,
    )
    log.info(
        "wrote %s (%s) in %.1f s",
        args.out,
        ", ".join(f"{k}={v}" for k, v in splits.items()),
        time.perf_counter() - t0,
    )
    if not domain.is_street8:
        log.info(
            "domain %s: images per case %s (details in %s)",
            domain.name,
            ", ".join(f"{k}={v}" for k, v in sorted(cases.items())),
            args.out / "domain.json",
        )
    return 0


def _data_check(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .data.datasets import open_dataset

    ds = open_dataset(args.root, args.split, args.layout)
    for i in tqdm(range(len(ds)), desc=f"check {args.split}"):
        ds[i]
    print(
        f"{args.root} [{args.split}]: {len(ds)} samples ok, {ds.num_classes} classes "
        f"({', '.join(c.name for c in ds.classes[:10])}{', ...' if ds.num_classes > 10 else ''})"
    )
    return 0


def _import_official(args: argparse.Namespace) -> int:
    from .official import import_official
    from .utils import setup_logging

    setup_logging(None, args.verbose)
    manifest = import_official(
        args.checkpoint,
        args.arch,
        args.dataset,
        args.out,
        args.input_size,
        args.dvae_decoder,
        args.name,
    )
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['bytes'] / 1e6:.1f} MB sha256 {info['sha256'][:16]}…")
    cost = manifest["cost"]
    print(
        f"wrote {args.out / 'model.json'}: reference model, {cost['prior_gmac'] + cost['decoder_gmac']:.0f} GMAC "
        f"per {manifest['input']['height']}x{manifest['input']['width']} frame (not an edge model)"
    )
    return 0


def _macs(args: argparse.Namespace) -> int:
    from .config import load_config
    from .flops import format_budget, inference_budget

    cfg = load_config(args.config)
    rows = inference_budget(cfg)
    print(json.dumps(rows, indent=1) if args.json else format_budget(rows, cfg.input_size))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_run
    from .utils import setup_logging

    setup_logging(None, args.verbose)
    manifest = export_run(
        args.run, args.out, args.name, args.metrics, argmax_in_graph=args.argmax == "graph"
    )
    for name, info in manifest["files"].items():
        print(f"{args.out / name}: {info['bytes'] / 1e6:.2f} MB sha256 {info['sha256'][:16]}…")
    print(f"wrote {args.out / 'model.json'}")
    return 0


def _logits(args: argparse.Namespace) -> int:
    from .export import logits_prior

    manifest = logits_prior(args.package)
    for name, info in manifest["files"].items():
        print(f"{args.package / name}: sha256 {info['sha256'][:16]}…")
    print(
        f"wrote {args.package / 'model.json'}: the prior ends with {manifest['prior']['output']!r}"
    )
    return 0


def _inverse(args: argparse.Namespace) -> int:
    """`inverse PACKAGE`: writes the nearest-colour graph; with `--from FILE --install`, installs FILE."""
    if args.source is not None:
        return _install_inverse(args)
    from .export import export_palette_inverse

    entry = export_palette_inverse(args.package, args.out, args.install)
    print(
        f"wrote {args.out or args.package / entry['file']}"
        + (" and switched model.json to it" if args.install else "")
    )
    return 0


def _install_inverse(args: argparse.Namespace) -> int:
    from .export import install_inverse, inverse_entry

    if not args.install:
        raise ValueError("--from installs a graph: add --install")
    if not args.source.is_file():
        raise FileNotFoundError(f"{args.source}: no such inverse graph")
    report = args.source.with_suffix(".json")
    gmac = json.loads(report.read_text()).get("gmac") if report.is_file() else None
    entry = inverse_entry(args.source, args.kind, args.out.name if args.out else None)
    install_inverse(args.package, args.source, entry, gmac=gmac)
    where = (
        f"{args.package / entry['file']}"
        if entry["kind"] == "onnx"
        else f"{args.package / 'model.json'} (linear)"
    )
    print(f"installed {args.source} as {where} and switched model.json to it")
    return 0


def _train_inverse(args: argparse.Namespace) -> int:
    from .inverse import InverseConfig, train_inverse
    from .utils import set_threads, setup_logging

    setup_logging(None, args.verbose)
    set_threads(args.threads)
    cfg = InverseConfig(
        hidden=args.hidden,
        kernel=args.kernel,
        layers=args.layers,
        iters=args.iters,
        batch_size=args.batch_size,
        crop=args.crop,
        lr=args.lr,
        seed=args.seed,
        class_weight_power=args.class_weight_power,
        calibrate=args.calibrate,
        argmax=args.argmax,
    )
    r = train_inverse(
        args.package,
        args.data,
        args.out,
        args.split,
        args.val_split or None,
        cfg,
        args.install,
        args.max_images,
        args.cache,
        args.threads or 0,
    )
    for split, m in r["mIoU"].items():
        print(
            f"{split} ({r['data']}, decoded by {r['package']}): mIoU nearest colour {m['nearest']:.2f}, "
            f"trained inverse {m['trained']:.2f}"
        )
    print(
        f"wrote {args.out}: {r['gmac']:.4f} GMAC per frame; decoded in {r['decode_seconds']:.0f} s, "
        f"trained in {r['train_seconds']:.0f} s"
        + (f"; installed in {args.package / 'model.json'}" if args.install else "")
    )
    return 0


def _export_baseline(args: argparse.Namespace) -> int:
    from .export import export_baseline
    from .utils import setup_logging

    setup_logging(None, args.verbose)
    info = export_baseline(args.run, args.out)
    print(
        f"wrote {args.out} ({info['onnx']['bytes'] / 1e6:.2f} MB, {info['gmac']:.3f} GMAC per "
        f"{info['input_size'][0]}x{info['input_size'][1]} frame) and {args.out.with_suffix('.json')}"
    )
    return 0


def _eval_onnx(args: argparse.Namespace) -> int:
    from .onnxeval import eval_onnx

    r = eval_onnx(
        args.model,
        args.data,
        args.split,
        args.fit,
        args.max_images,
        args.threads,
        args.layout,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(r, indent=1))
        return 0
    print(
        f"{args.model} on {args.data} [{args.split}], {r['images']} images, fit {r['fit']}: "
        f"mIoU {r['mIoU']:.2f}, mAcc {r['mAcc']:.2f}, aAcc {r['aAcc']:.2f} ({r['ms_per_image']:.1f} ms/image)"
    )
    print(
        "  "
        + ", ".join(
            f"{k} {v['IoU']:.2f}" if v["IoU"] is not None else f"{k} -"
            for k, v in r["per_class"].items()
        )
    )
    return 0


def _quantize(args: argparse.Namespace) -> int:
    from .quantize import quantize_package
    from .utils import setup_logging

    setup_logging(None, args.verbose)
    manifest = quantize_package(args.package, args.calib, args.format, args.split, args.images)
    variant = "int8" if args.format == "qdq" else "int8-qoperator"
    for part in ("prior", "decoder"):
        f = manifest["variants"][variant][part]
        print(
            f"{args.package / f}: {manifest['files'][f]['bytes'] / 1e6:.2f} MB "
            f"(fp32 {manifest['files'][manifest[part]['file']]['bytes'] / 1e6:.2f} MB)"
        )
    print(f"variant {variant} listed in {args.package / 'model.json'}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    import onnxruntime

    from .bench import bench_package, format_rows

    rows = bench_package(args.package, args.threads, args.runs)
    print(f"onnxruntime {onnxruntime.__version__}, {args.package}, median of {args.runs} runs")
    print(format_rows(rows))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from .utils import setup_logging
    from .verify import verify, write_fixtures

    setup_logging(None, args.verbose)
    r = verify(args.package, args.run, args.data, args.split, args.max_images, args.variant)
    print(
        f"{args.package} [{r['variant']}] on {r['images']} {args.split} images: "
        f"token agreement {r['token_agreement']:.3f} %, class-map agreement {r['class_agreement']:.3f} %, "
        f"mIoU PyTorch {r['mIoU_pytorch']:.2f} / onnxruntime {r['mIoU_onnxruntime']:.2f}"
    )
    if args.fixtures:
        from .data.datasets import open_dataset

        ds = open_dataset(args.data, args.split)
        images = [p for p, _ in ds.pairs[: args.fixture_images]]
        write_fixtures(args.package, images, args.fixtures)
        print(f"wrote reference outputs for {len(images)} images to {args.fixtures}")
    return 0


def _reference(args: argparse.Namespace) -> int:
    from .reference import parse_fits, write_frame_reference

    reference = write_frame_reference(
        args.package, args.image, args.out, parse_fits(args.fit), args.variant
    )
    width, height = reference["size"]
    print(
        f"wrote {args.out / 'reference.json'}: {width}x{height} frame, "
        f"fits {', '.join(c['fit'] for c in reference['cases'])}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import load_config, save_config
    from .distributed import distributed_session, env_from_torchrun
    from .train import STAGES, Trainer, check_batches
    from .utils import log, set_threads, setup_logging

    cfg = load_config(args.config)
    stages = STAGES if args.stage == "all" else (args.stage,)
    check_batches(cfg, stages, env_from_torchrun())  # before the ranks wait for each other
    # under torchrun: one of several DDP processes (distributed.py); else the one process
    with distributed_session(args.device) as (dist, device):
        if dist.is_main:  # rank 0 alone writes the run directory
            args.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, args.out / "config.yaml")
        setup_logging(args.out / "train.log" if dist.is_main else None, args.verbose, dist.rank)
        set_threads(args.threads)
        log.info(
            "gss-convert %s: training %s of %s on %s, data %s",
            __version__,
            args.stage,
            cfg.name,
            device if not dist.enabled else f"{dist.world_size} processes ({device.type})",
            args.data,
        )
        trainer = Trainer(
            cfg,
            args.data,
            args.out,
            device,
            resume=args.resume,
            max_train=args.max_train,
            decoder_from=args.decoder_from,
            dist=dist,
        )
        for stage in stages:
            trainer.run(stage)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .evaluate import evaluate
    from .utils import resolve_device, set_threads, setup_logging

    out = args.out or args.run / f"eval-{args.split}"
    setup_logging(out / "eval.log", args.verbose)
    set_threads(args.threads)
    evaluate(
        args.run,
        args.data,
        args.split,
        out,
        resolve_device(args.device),
        batch_size=args.batch_size,
        panels=args.panels,
        max_images=args.max_images,
        layout=args.layout,
    )
    print((out / "metrics.md").read_text())
    print(f"wrote {out / 'metrics.json'}, {out / 'metrics.md'} and panels in {out / 'panels'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
