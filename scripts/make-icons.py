#!/usr/bin/env python3
"""Draws the extension icon (128 px) and each task's icon (32 px): a shield
with a check mark, as plain RGBA PNGs (no image library needed)."""
import os, struct, sys, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def shield_png(path, size, fg=(255, 255, 255, 255), bg=(0, 105, 255, 255)):
    rows = []
    c = size / 2
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            dx = (x - c + 0.5) / c
            dy = (y - c + 0.5) / c
            inside = abs(dx) < 0.8 and dy > -0.8 and (dy < 0.1 or dx * dx + (dy - 0.1) ** 2 < 0.64)
            rim = inside and (abs(dx) > 0.6 or dy < -0.6 or (dy >= 0.1 and dx * dx + (dy - 0.1) ** 2 > 0.36))
            check = abs((dy - 0.05) - (0.5 * abs(dx + 0.15) - 0.1)) < 0.09 and -0.45 < dx < 0.45 and dy > -0.3
            row += bytes(fg if (rim or check) else (bg if inside else (0, 0, 0, 0)))
        rows.append(bytes(row))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', size, size, 8, 6, 0, 0, 0))
    png += chunk(b'IDAT', zlib.compress(b''.join(rows), 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)

shield_png(os.path.join(ROOT, 'images', 'extension-icon.png'), 128)
tasks = os.path.join(ROOT, 'tasks')
for name in sorted(os.listdir(tasks)):
    if os.path.exists(os.path.join(tasks, name, 'task.json')):
        shield_png(os.path.join(tasks, name, 'icon.png'), 32)
