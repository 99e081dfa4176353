# Sourced by the evaluation scripts: the gss binary and the synthetic sets they score on, each
# generated once (deterministic per seed) when missing. Expects to run in the repository root.
bash scripts/setup-python.sh >/dev/null
cargo build --release --quiet --bin gss
gss=target/release/gss
convert=convert/.venv/bin/gss-convert

# ensure_set NAME: street8 (training domain), street8-shift (cross-domain), and their 640×480
# (4:3) renders street8-43 and street8-shift-43, under data/.
ensure_set() {
    [[ -f "data/$1/classes.json" ]] && return 0
    case "$1" in
        street8) "$convert" data synth --out data/street8 --size 256x512 --split train=1600,val=100,test=200 --seed 0 ;;
        street8-shift) bash scripts/make-crossdomain.sh data/street8-shift ;;
        street8-43) "$convert" data synth --out data/street8-43 --size 480x640 --split test=200 --seed 7 ;;
        street8-shift-43) "$convert" data synth --out data/street8-shift-43 --size 480x640 --split test=200 --seed 7 --domain shift ;;
        *) echo "no recipe for data/$1" >&2; return 1 ;;
    esac
}

# The packages to score: the arguments, or both bundled ones.
packages=("$@")
if [[ ${#packages[@]} -eq 0 ]]; then
    packages=(models/gss-edge-street8 models/gss-edge-street8-dense)
fi
