# sidecar-lab's CLI in an image: the rule generator (the init container), the sidecar, the lab's app.
# No image registry is reachable here, so the base is made locally from Debian packages plus the host's node
# (scripts/docker-image.sh builds both images). It copies the tree's built artefacts instead of building
# inside, because a container with --network none has no registry either: run `npm ci` first.
#   docker build -t sidecar-lab .                      (after npm ci; the script's build leaves out devDependencies)
#   docker run --rm --network container:POD --cap-add NET_ADMIN --cap-add NET_RAW sidecar-lab iptables -p 15001 ...
#   docker run -d --network container:POD --user 1337:1337 sidecar-lab proxy
ARG BASE=sidecar-lab/base:bookworm
FROM ${BASE}

# The capture rules exempt uid 1337 (Istio's istio-proxy); the apps run as an ordinary user, 1000.
RUN groupadd -g 1337 istio-proxy && useradd -u 1337 -g 1337 -M -d /nonexistent -s /usr/sbin/nologin istio-proxy \
 && groupadd -g 1000 app && useradd -u 1000 -g 1000 -M -d /nonexistent -s /usr/sbin/nologin app

WORKDIR /opt/sidecar-lab
COPY package.json package-lock.json ./
COPY node_modules/ ./node_modules/
COPY build/Release/sockopt.node ./build/Release/
COPY dist/ ./dist/

ENTRYPOINT ["node", "/opt/sidecar-lab/dist/cli.js"]
CMD ["--help"]
