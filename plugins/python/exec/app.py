"""The Python runtime of `toka-host exec --lang python`: a wasi:cli command
that runs the code given as `-c CODE`, like `python3 -c`, inside the
sandbox. Uncaught exceptions print a traceback on stderr and exit 1;
`sys.exit(0)` (or no exit) is success, any other exit status is failure.
"""

import sys
import traceback

# The runtime's standard library is what is imported here, at build time
# (componentize-py snapshots the initialized interpreter): code run by
# `exec` can import these, and the modules they use.
import base64  # noqa: F401
import bisect  # noqa: F401
import collections  # noqa: F401
import copy  # noqa: F401
import csv  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import difflib  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import hashlib  # noqa: F401
import heapq  # noqa: F401
import html  # noqa: F401
import io  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import math  # noqa: F401
import operator  # noqa: F401
import os  # noqa: F401
import pprint  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import struct  # noqa: F401
import textwrap  # noqa: F401
import time  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401
import urllib.parse  # noqa: F401
import uuid  # noqa: F401
import zlib  # noqa: F401

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import environment


class Run(exports.Run):
    def run(self) -> None:
        args = environment.get_arguments()
        if len(args) != 3 or args[1] != "-c":
            print("usage: python-exec -c CODE", file=sys.stderr)
            raise Err(None)
        sys.argv = ["-c"]
        status = 0
        try:
            exec(compile(args[2], "<exec>", "exec"), {"__name__": "__main__"})
        except SystemExit as e:
            if e.code is None or e.code == 0:
                status = 0
            else:
                if not isinstance(e.code, int):
                    print(e.code, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        if status != 0:
            raise Err(None)
