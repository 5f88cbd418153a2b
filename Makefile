# User-account service: build, test and run helpers (GNU make).
#
# `sam build` runs `make build-<LogicalId>` here with ARTIFACTS_DIR set for
# every function in template.yaml (Metadata BuildMethod: makefile).

MAKEFLAGS += --no-print-directory

# One "LogicalId:dir" pair per function: LogicalId as in template.yaml, dir
# under functions/. Adding a function here is the only Makefile change needed.
FUNCTIONS := \
	SignUpFunction:signup \
	ImportUsersFunction:import-users \
	ActivateFunction:activate \
	ResendActivationFunction:resend-activation \
	LoginFunction:login \
	LogoutFunction:logout \
	MeFunction:me \
	DeleteSelfFunction:delete-self \
	ListUsersFunction:list-users \
	CreateScopeFunction:create-scope \
	ListScopesFunction:list-scopes \
	GetScopeFunction:get-scope \
	UpdateScopeFunction:update-scope \
	DeleteScopeFunction:delete-scope \
	ChangeMembersFunction:change-members \
	ListScopeUsersFunction:list-scope-users \
	GetUserFunction:get-user \
	UpdateUserFunction:update-user \
	DeleteUserFunction:delete-user \
	GetTokenFunction:get-token \
	RefreshTokenFunction:refresh-token \
	CreateApiKeyFunction:create-apikey \
	ListApiKeysFunction:list-apikeys \
	RevokeApiKeyFunction:revoke-apikey \
	ChangeEmailFunction:change-email \
	CancelChangeEmailFunction:cancel-change-email \
	ConfirmEmailFunction:confirm-email \
	ChangePasswordFunction:change-password \
	PasswordResetFunction:password-reset \
	PasswordResetConfirmFunction:password-reset-confirm \
	PullRemoteUserFunction:pull-remote-user \
	ResendMailsFunction:resend-mails \
	PagesFunction:pages \
	GetImageFunction:get-image \
	SchemaFunction:schema \
	StreamFunction:stream \
	MailFeedbackFunction:mail-feedback

# Lambda provided.al2023 on arm64: a static binary named bootstrap.
LAMBDA_GOENV := GOOS=linux GOARCH=arm64 CGO_ENABLED=0
LAMBDA_GOFLAGS := -tags lambda.norpc -trimpath -ldflags "-s -w"

# Latest staticcheck release that supports Go 1.26 (its go.mod says go 1.26.0);
# see `go list -m -versions honnef.co/go/tools`.
STATICCHECK_VERSION := v0.8.2
FUZZTIME ?= 60s

function_id = $(word 1,$(subst :, ,$(1)))
function_dir = $(word 2,$(subst :, ,$(1)))
FUNCTION_IDS := $(foreach f,$(FUNCTIONS),$(call function_id,$(f)))
BUILD_TARGETS := $(addprefix build-,$(FUNCTION_IDS))

# build-<LogicalId>: ARTIFACTS_DIR comes from SAM; by hand it defaults to
# .aws-sam/build/<LogicalId>.
define function_build_rule
build-$(1): ARTIFACTS_DIR ?= .aws-sam/build/$(1)
build-$(1):
	@mkdir -p "$$(ARTIFACTS_DIR)"
	$(LAMBDA_GOENV) go build $(LAMBDA_GOFLAGS) -o "$$(ARTIFACTS_DIR)/bootstrap" ./functions/$(2)
endef
$(foreach f,$(FUNCTIONS),$(eval $(call function_build_rule,$(call function_id,$(f)),$(call function_dir,$(f)))))

# Go sources to format-check (testdata included; npm and build output not).
FIND_GO_FILES := find . \( -path ./.git -o -path ./tools/node_modules -o -path ./.aws-sam -o -path ./.local \) -prune -o -name '*.go' -print0

.PHONY: all build $(BUILD_TARGETS) tools run create-staff preflight test e2e fmt-check vet staticcheck lint-template generate bench bench-list fuzz clean

all: build

## build: every function into .aws-sam/build/<LogicalId>/bootstrap
build: $(BUILD_TARGETS)

## tools: npm-installed local emulators, reinstalled when the lock file changes
tools: tools/node_modules/.package-lock.json

tools/node_modules/.package-lock.json: tools/package-lock.json
	npm ci --no-audit --no-fund --prefix tools
	@touch $@ tools/node_modules/.localstack-installed # the stamp pkg/localstack.EnsureTools checks

## create-staff: the first staff account of a deployed stack
##   make create-staff STACK=user-accounts EMAIL=admin@example.com  (asks for the password)
STACK ?= user-accounts
create-staff:
	@test -n "$(EMAIL)" || { echo "usage: make create-staff STACK=<stack> EMAIL=<address>"; exit 2; }
	TABLE_NAME="$$(aws cloudformation describe-stacks --stack-name $(STACK) \
		--query "Stacks[0].Outputs[?OutputKey=='UsersTableName'].OutputValue" --output text)" \
	ADMIN_EMAIL="$(EMAIL)" go run ./cmd/create-staff

## preflight: can the deployed stack send mail? Its SenderEmail (or its domain)
##   verified in SES, sending enabled, and whether the account is still in the
##   SES sandbox (exit 3); uses your AWS credentials and region, changes nothing.
##   make preflight STACK=user-accounts   (SENDER=<address> before the first deploy)
preflight:
	@STACK="$(STACK)" SENDER="$(SENDER)" go run ./cmd/preflight

## run: the local stack (API + emulated DynamoDB and SES)
run: tools
	go run ./local

## test: everything CI checks, in order
test: tools
	$(MAKE) fmt-check
	go vet ./...
	$(MAKE) staticcheck
	$(MAKE) lint-template
	$(MAKE) -j2 build
	go test -count=1 -timeout 15m ./...
	$(MAKE) fuzz FUZZTIME=20000x

## e2e: the pages' browser tests alone (headless Chromium; `go test ./...`
##   runs them too when /usr/bin/chromium exists), screenshots into docs/pages/
e2e: tools
	go test -count=1 -run TestPagesInABrowser -v ./pkg/pages

fmt-check:
	@unformatted="$$($(FIND_GO_FILES) | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	go vet ./...

staticcheck:
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

lint-template:
	cfn-lint template.yaml

## generate: the Go client in pkg/client from api/openapi.yaml (oapi-codegen, pinned in
##   pkg/client/generate.go); `go test ./pkg/client` fails when it is not current
generate:
	go generate ./pkg/client

## bench: binary sizes, cold starts, per-operation latency, DynamoDB/SES cost,
##   a cost model, the stream path, then an import of 100,000 users and the
##   lists at scale (100,000 users with word lists off; 10,000 with them,
##   whose seeding writes ~40 word list items a user, and the stream's cost
##   of 500 users imported after), into docs/BENCHMARKS.md and
##   bench/results.json (~5 min, plus 1-2 h for the import and about 1 h for
##   the lists at scale; `go run ./bench -only-import` / `make bench-list`
##   run those parts alone)
bench: tools
	go run ./bench

## bench-list: only the lists at scale (100,000 users without word lists,
##   10,000 with them; every list case measured, 1,000,000 extrapolated),
##   into the same two files (about 1 h)
bench-list: tools
	go run ./bench -only-list-scale

## fuzz: each fuzz target for FUZZTIME (default 60s)
fuzz:
	@files="$$(grep -rl 'func Fuzz' --include='*_test.go' --exclude-dir=node_modules --exclude-dir=.aws-sam --exclude-dir=.git . || true)"; \
	if [ -z "$$files" ]; then echo "fuzz: no fuzz targets found"; exit 0; fi; \
	for file in $$files; do \
		pkg="./$$(dirname "$${file#./}")"; \
		for target in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$file"); do \
			echo "fuzz: $$pkg $$target"; \
			go test -run='^$$' -fuzz="^$$target$$" -fuzztime=$(FUZZTIME) "$$pkg" || exit 1; \
		done; \
	done

clean:
	rm -rf .aws-sam bench/out coverage.out
