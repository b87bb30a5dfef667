#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Fails when the project's headers include each other in a cycle.

Reads every header under include/ and src/, follows its #include "..." lines that name a file
of the project (gw/X.h is include/gw/X.h; other names are relative to the header), and prints
each cycle found. Exit 0 when there is none, 1 otherwise.

    tools/check-includes.py [SOURCE_ROOT]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')
root = os.path.abspath(root)
headers = {}
for top in ('include', 'src'):
    for d, _, files in os.walk(os.path.join(root, top)):
        for f in files:
            if f.endswith('.h'):
                headers[os.path.join(d, f)] = []
for h in headers:
    with open(h, encoding='utf-8') as f:
        for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', f.read(), re.M):
            path = os.path.join(root, 'include', name) if name.startswith('gw/') else \
                os.path.normpath(os.path.join(os.path.dirname(h), name))
            if path in headers:
                headers[h].append(path)

cycles = []
state = {}


def visit(h, stack):
    state[h] = 'open'
    stack.append(h)
    for d in headers[h]:
        if state.get(d) == 'open':
            cycles.append(stack[stack.index(d):] + [d])
        elif d not in state:
            visit(d, stack)
    stack.pop()
    state[h] = 'done'


for h in sorted(headers):
    if h not in state:
        visit(h, [])
for c in cycles:
    print('include cycle: ' + ' -> '.join(os.path.relpath(h, root) for h in c))
print(f'{len(headers)} headers, {sum(map(len, headers.values()))} project includes, '
      f'{len(cycles)} cycle(s)')
sys.exit(1 if cycles else 0)
