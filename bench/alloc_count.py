"""A tracer-free allocation counter, to check what memray reports on CPython 3.11.

memray follows Python stacks with a profile hook, and on 3.11 that hook itself makes the
interpreter allocate (a frame object per call, bound methods for C calls, iterators where the
specialised bytecode would unpack a tuple in place). bench/memray_receive.py leaves those out
by their native stacks; this module counts the same loops with no hook at all, so the two
figures can be compared: if they agree, the exclusions are right.

How: a tiny C extension, compiled on first use with the system C compiler into bench/out/,
wraps CPython's PYMEM_DOMAIN_MEM and PYMEM_DOMAIN_OBJ allocators (the way tracemalloc does) and
counts malloc/calloc/realloc calls and bytes between start() and stop(). The raw domain is
left alone: pymalloc hands large blocks to it, so counting it too would count them twice.
When no compiler or headers are available, ``load()`` returns None and the check is skipped.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path
from types import ModuleType

SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyMemAllocatorEx orig_mem, orig_obj;
static unsigned long long n_allocs, n_bytes;
static int hooked;

static void *count_malloc(void *ctx, size_t size) {
    PyMemAllocatorEx *a = (PyMemAllocatorEx *)ctx;
    n_allocs++; n_bytes += size;
    return a->malloc(a->ctx, size);
}
static void *count_calloc(void *ctx, size_t nelem, size_t elsize) {
    PyMemAllocatorEx *a = (PyMemAllocatorEx *)ctx;
    n_allocs++; n_bytes += nelem * elsize;
    return a->calloc(a->ctx, nelem, elsize);
}
static void *count_realloc(void *ctx, void *ptr, size_t size) {
    PyMemAllocatorEx *a = (PyMemAllocatorEx *)ctx;
    n_allocs++; n_bytes += size;
    return a->realloc(a->ctx, ptr, size);
}
static void count_free(void *ctx, void *ptr) {
    PyMemAllocatorEx *a = (PyMemAllocatorEx *)ctx;
    a->free(a->ctx, ptr);
}

static PyObject *start(PyObject *self, PyObject *unused) {
    if (!hooked) {
        PyMemAllocatorEx mem = {&orig_mem, count_malloc, count_calloc, count_realloc, count_free};
        PyMemAllocatorEx obj = {&orig_obj, count_malloc, count_calloc, count_realloc, count_free};
        PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &orig_mem);
        PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &orig_obj);
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &obj);
        hooked = 1;
    }
    n_allocs = 0; n_bytes = 0;
    Py_RETURN_NONE;
}

static PyObject *stop(PyObject *self, PyObject *unused) {
    unsigned long long a = n_allocs, b = n_bytes;
    if (hooked) {
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &orig_mem);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &orig_obj);
        hooked = 0;
    }
    return Py_BuildValue("(KK)", a, b);
}

static PyMethodDef methods[] = {
    {"start", start, METH_NOARGS, "Start counting allocations."},
    {"stop", stop, METH_NOARGS, "Stop; return (allocations, bytes) since start()."},
    {NULL, NULL, 0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_alloccount", NULL, -1, methods};
PyMODINIT_FUNC PyInit__alloccount(void) { return PyModule_Create(&module); }
"""

BUILD = Path(__file__).parent / "out" / "alloccount"


def load() -> ModuleType | None:
    """The compiled counter module, building it if needed; None when it cannot be built."""
    import importlib.util

    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    target = BUILD / f"_alloccount{suffix}"
    if not target.exists():
        compiler = shutil.which("cc") or shutil.which("gcc")
        include = sysconfig.get_paths().get("include")
        if compiler is None or include is None or not (Path(include) / "Python.h").exists():
            return None
        BUILD.mkdir(parents=True, exist_ok=True)
        source = BUILD / "alloccount.c"
        source.write_text(SOURCE)
        built = subprocess.run(
            [compiler, "-shared", "-fPIC", "-O2", f"-I{include}", str(source), "-o", str(target)],
            capture_output=True,
        )
        if built.returncode != 0:
            return None
    spec = importlib.util.spec_from_file_location("_alloccount", target)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
