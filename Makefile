# dropkit: the two entry points are `make book` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= default
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
export PYTHONUNBUFFERED := 1

.PHONY: book book-check test venv system-deps data repository-url clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[book,test,cluster]'
	touch $@

venv: $(VENV)/.installed

# The real Fashion-MNIST (Debian package dataset-fashion-mnist), installed when missing and apt is usable.
data:
	@if [ ! -f $(FASHION_MNIST) ] && [ -z "$$DROPKIT_DATA" ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null; \
	  else echo "Fashion-MNIST missing: run 'sudo apt-get install dataset-fashion-mnist' or set DROPKIT_DATA"; fi; \
	fi

# Headless Chromium and its driver, for the tests that load the rendered book in a browser; a C
# compiler for the pinned CPU kernels (dropkit/kernels.py).
system-deps: data
	@if ! command -v cc >/dev/null && ! command -v gcc >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q gcc || (apt-get update -q && apt-get install -y -q gcc)) >/dev/null; \
	  else echo "no C compiler: rows are computed with this machine's own kernels (install gcc)"; fi; \
	fi
	@if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -q chromium chromium-driver || (apt-get update -q && apt-get install -y -q chromium chromium-driver)) >/dev/null; \
	  else echo "chromium/chromedriver missing: the browser test will fail; install Debian's chromium and chromium-driver"; fi; \
	fi

book: venv data
	$(PY) -m dropkit.book --profile $(PROFILE)

# The book checks of the test suite (tests/test_book.py: paper figures, internal links, every page
# in an offline browser) on the book that `make book` rendered, instead of the suite's own smoke render.
BOOK_HTML ?= $(CURDIR)/_build/html
book-check: venv system-deps
	DROPKIT_BOOK_HTML=$(BOOK_HTML) $(PY) -m pytest tests/test_book.py $(PYTEST_ARGS)

# The repository's URL is [project.urls] Repository in pyproject.toml; this writes it (and the
# book's GitHub Pages address) into _config.yml and README.md. Standard library only.
repository-url:
	$(PYTHON) .ci/repository_url.py

test: venv system-deps
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: that is a failure" >&2; fi; exit $$rc

clean:
	rm -rf _build book/generated
