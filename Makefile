STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build up test test-unit test-e2e check fmt vet staticcheck bench fuzz

build:
	go build -o bin/svcnet ./cmd/svcnet

up:
	./scripts/up.sh

test:
	./scripts/test.sh

test-unit:
	go test -race -count=1 $$(go list ./... | grep -v /test/e2e)

test-e2e:
	go test -count=1 -timeout 20m ./test/e2e/...

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	go vet ./...

staticcheck:
	go run $(STATICCHECK) ./...

check: fmt vet staticcheck test-unit

bench:
	go run ./bench/apiserver
	go run ./bench/endpoints
	go run ./bench/dns

# Every fuzzer for FUZZTIME each, one at a time (go test runs their seed corpora).
FUZZTIME ?= 60s
FUZZERS := apiserver:FuzzDecodeRequest apiserver:FuzzDecodeInto apiserver:FuzzApplyPatch apiserver:FuzzApplyRequest \
	dns:FuzzServeWire ingress:FuzzRequestHead ingress:FuzzH1Answer

fuzz:
	@for f in $(FUZZERS); do pkg=$${f%%:*}; name=$${f##*:}; echo "== $$name ($(FUZZTIME))"; \
		go test ./internal/$$pkg -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -parallel 2 || exit 1; done
