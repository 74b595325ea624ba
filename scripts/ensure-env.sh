# Shared by scripts/test.sh and scripts/run.sh (sourced, not run).

# ensure_system_packages cmd:package ... — install missing Debian packages, or say exactly what is missing.
ensure_system_packages() {
    local missing=()
    for pair in "$@"; do
        local cmd="${pair%%:*}" pkg="${pair##*:}"
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    # de-duplicate
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    local sudo=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; }; then
        echo "installing Debian packages: ${missing[*]}" >&2
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
        echo "missing system packages: ${missing[*]} (install them with: apt-get install ${missing[*]})" >&2
        exit 1
    fi
}

# ensure_python_env — the locked virtualenv in .venv, built with uv (installed into a bootstrap venv if absent).
ensure_python_env() {
    local uv
    uv="$(command -v uv || true)"
    if [ -z "$uv" ]; then
        if [ ! -x .bootstrap/bin/uv ]; then
            if ! python3 -m venv .bootstrap >/dev/null 2>&1; then
                ensure_system_packages python3-venv:python3-venv
                rm -rf .bootstrap
                python3 -m venv .bootstrap
            fi
            .bootstrap/bin/python -m pip install -q uv
        fi
        uv=.bootstrap/bin/uv
    fi
    "$uv" sync --frozen --quiet
}
