# The two commands of the README's quick start: `make demo` and `make test`.
# Each creates .venv on first use, so a fresh machine with Python 3.11 is enough.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench vsix clean

$(BIN)/reqon: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(BIN)/reqon

demo: $(BIN)/reqon
	$(BIN)/reqon demo

# GitHub's OpenAPI description (npm @octokit/openapi, pinned; only api.github.com.json is kept,
# in the git-ignored .cache/) for tests/openapi/test_github.py. Without npm the test says why.
GITHUB_OPENAPI := .cache/octokit-openapi/api.github.com.json
$(GITHUB_OPENAPI):
	@mkdir -p $(@D)
	@cd $(@D) && npm pack --silent @octokit/openapi@23.0.2 >/dev/null \
	  && tar xzf octokit-openapi-23.0.2.tgz --strip-components=2 package/generated/api.github.com.json \
	  && rm -f octokit-openapi-23.0.2.tgz \
	  || echo "make: could not fetch @octokit/openapi with npm; tests/openapi/test_github.py will report it"

test: $(BIN)/reqon $(GITHUB_OPENAPI)
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench: $(BIN)/reqon
	$(BIN)/python -m bench

vsix:
	cd editors/vscode && npm ci && npm run package

clean:
	rm -rf $(VENV) .reqon-data dist
