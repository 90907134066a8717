# scratchpack — `make help` lists the targets.
GO      ?= go
BIN     := bin/scratchpack
GOFLAGS ?=
FUZZTIME ?= 30s

.PHONY: help build tools test realworld demo fixtures fuzz bench lint clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

build: ## build bin/scratchpack, one static binary (CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -buildvcs=auto -trimpath -ldflags='-s -w' -o $(BIN) ./cmd/scratchpack

tools: ## install the Debian packages the tests need (gcc, musl-tools...) if missing
	@./.ci/install-deps

fixtures: tools ## build the C fixture programs into fixtures/build
	$(MAKE) -C fixtures

test: fixtures lint ## run every test (fixtures, the system corpus against the real loader, the CLI)
	$(GO) test $(GOFLAGS) -count=1 ./...

realworld: fixtures ## the real-world suite alone, with its "N passed, M failed" line (27 Debian programs from roots built without --trace)
	$(GO) test $(GOFLAGS) -count=1 -v -run '^TestRealWorld$$' ./cmd/scratchpack | grep -E '^(realworld:|--- |ok|FAIL)'

lint: ## gofmt, go vet and staticcheck must be clean
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

demo: build tools ## build the dynamically-linked hello world, pack it FROM scratch, run it from the built root
	@$(MAKE) -s -C fixtures build/hello
	@echo "== fixtures/build/hello: a dynamically-linked hello world (not -static)"
	@file fixtures/build/hello 2>/dev/null || true
	@echo "== scratchpack deps fixtures/build/hello"
	@./$(BIN) deps fixtures/build/hello
	@echo "== scratchpack build fixtures/build/hello:/hello -o dir:fixtures/build/demo-root"
	@./$(BIN) build --force --certs never fixtures/build/hello:/hello -o dir:fixtures/build/demo-root
	@echo "== scratchpack build fixtures/build/hello:/hello -o oci:fixtures/build/demo-oci:latest (prints the digest: the same from any checkout)"
	@./$(BIN) build --force --certs never fixtures/build/hello:/hello -o oci:fixtures/build/demo-oci:latest
	@printf '== sizes: closure (program + libraries) %s bytes; root filesystem %s bytes; OCI layer %s bytes\n' \
	  "$$(du -cLb fixtures/build/hello $$(./$(BIN) deps --format list fixtures/build/hello) | tail -n 1 | cut -f1)" \
	  "$$(du -sb fixtures/build/demo-root | cut -f1)" \
	  "$$(find fixtures/build/demo-oci/blobs -type f -size +1k -printf '%s\n' | sort -n | tail -n 1)"
	@echo "== the image's files:"
	@cd fixtures/build/demo-root && find . -mindepth 1 | sort | sed 's|^\.|  |'
	@echo "== running /hello from the built root (chroot; nothing else is in there):"
	@if [ "$$(id -u)" = 0 ]; then chroot fixtures/build/demo-root /hello; \
	  else unshare -r chroot fixtures/build/demo-root /hello; fi

fuzz: ## fuzz every parser of hostile input for FUZZTIME each (ELF, ld.so.cache and its writer, ld.so.conf, image layers, nsswitch.conf, outputs, accounts, tree writers, script parsers, dpkg database)
	$(GO) test ./elfdeps -run '^$$' -fuzz '^FuzzNewBinary$$' -fuzztime $(FUZZTIME)
	$(GO) test ./elfdeps -run '^$$' -fuzz '^FuzzParseLDCache$$' -fuzztime $(FUZZTIME)
	$(GO) test ./elfdeps -run '^$$' -fuzz '^FuzzLDSoConf$$' -fuzztime $(FUZZTIME)
	$(GO) test ./elfdeps -run '^$$' -fuzz '^FuzzLDConfigBuild$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector/rootfs -run '^$$' -fuzz '^FuzzNewImage$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector -run '^$$' -fuzz '^FuzzNSSwitch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector -run '^$$' -fuzz '^FuzzParseDest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector -run '^$$' -fuzz '^FuzzAccounts$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector -run '^$$' -fuzz '^FuzzTreeWriters$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector -run '^$$' -fuzz '^FuzzScriptParsers$$' -fuzztime $(FUZZTIME)
	$(GO) test ./collector/dpkg -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME)

bench: build ## deps over the system corpus vs libtree and ldd; build of a large closure vs tar+gzip, pigz and crane; layer sharing across six images in a registry
	./bench/deps.sh && ./bench/build.sh && ./bench/layers.sh

clean: ## remove build outputs
	rm -rf bin
	$(MAKE) -C fixtures clean
