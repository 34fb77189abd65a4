# shellcheck shell=bash
# Sourced by the docker/ scripts after wb_scripts/_args.sh: what they say when the machine
# cannot build or run the image. Each problem is one line on stderr and exit status 2 (a
# mistake in the options stays die's status 1).

# shellcheck disable=SC2034 # the defaults of the scripts that source this file
DEFAULT_IMAGE="raster-vision-wb-africa"
# shellcheck disable=SC2034
DEFAULT_BASE="python:3.11-slim-bookworm"
# shellcheck disable=SC2034
APP_DIR="/opt/src/open-cities-benchmark"  # the image's WORKDIR (docker/Dockerfile)

# setup_error MESSAGE: the machine (not the options) is the problem.
setup_error() {
    echo "error: $*" >&2
    exit 2
}

need_docker_client() {
    command -v docker >/dev/null ||
        setup_error "no docker client on PATH: install Docker (Debian: apt-get install docker.io) or add its bin directory to PATH"
}

need_docker_daemon() {
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
        setup_error "no Docker daemon answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}: start it (systemctl start docker; or, as root, docker/dockerd start) or set DOCKER_HOST"
}

# need_base_image IMAGE: here already, or pulled now.
need_base_image() {
    docker image inspect "$1" >/dev/null 2>&1 && return 0
    docker pull --quiet "$1" >/dev/null 2>&1 ||
        setup_error "base image $1 is not on this machine and cannot be pulled: pull or build it, or make the local stand-in with docker/local_base and pass --base open-cities-base:bookworm"
}

# need_image IMAGE: an image that docker/build made.
need_image() {
    docker image inspect "$1" >/dev/null 2>&1 ||
        setup_error "no image $1 on this Docker daemon: build it with docker/build (or pass --image)"
}

# canonical_name NAME: a Python distribution name as pip compares it (PEP 503).
canonical_name() {
    local name="${1,,}"
    echo "${name//[._]/-}" | tr -s '-'
}

# need_wheelhouse DIR REQUIREMENTS: DIR holds a wheel (or sdist) of every name==version pin.
need_wheelhouse() {
    local dir="$1" requirements="$2" file stem name version line
    [ -d "$dir" ] ||
        setup_error "wheelhouse $dir does not exist: fill it with docker/wheelhouse $dir (needs PyPI)"
    declare -A have=()
    for file in "$dir"/*.whl "$dir"/*.tar.gz "$dir"/*.zip; do
        [ -e "$file" ] || continue
        stem="$(basename "$file")"
        case "$stem" in
            *.whl) IFS=- read -r name version _ <<<"${stem%.whl}" ;;
            *.tar.gz) stem="${stem%.tar.gz}"; name="${stem%-*}"; version="${stem##*-}" ;;
            *.zip) stem="${stem%.zip}"; name="${stem%-*}"; version="${stem##*-}" ;;
        esac
        have["$(canonical_name "$name")==${version%%+*}"]=1
    done
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%%#*}"
        line="${line//[[:space:]]/}"
        [[ "$line" =~ ^([A-Za-z0-9._-]+)(\[[^]]*\])?==([^;]+) ]] || continue
        name="${BASH_REMATCH[1]}"
        version="${BASH_REMATCH[3]}"
        [ -n "${have["$(canonical_name "$name")==${version%%+*}"]:-}" ] ||
            setup_error "wheelhouse $dir has no $name==$version (pinned in requirements.txt): add it with docker/wheelhouse $dir"
    done <"$requirements"
}
