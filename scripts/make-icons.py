#!/usr/bin/env python3
"""Draws the extension icon (128 px: a shield with a check mark) and each task's own icon (32 px: a
shield in the task's colour with the task's sign), as plain RGBA PNGs. Python's standard library
only (struct, zlib): no image library needed. Run it from anywhere; it rewrites images/ and
tasks/*/icon.png, and the same script always writes the same bytes."""
import os, struct, zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHITE = (255, 255, 255, 255)


def near_segment(dx, dy, a, b, width):
    (ax, ay), (bx, by) = a, b
    vx, vy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((dx - ax) * vx + (dy - ay) * vy) / (vx * vx + vy * vy)))
    return (dx - ax - t * vx) ** 2 + (dy - ay - t * vy) ** 2 < width * width


def check_mark(dx, dy):
    corner = (-0.12, 0.3)
    return near_segment(dx, dy, (-0.42, 0.0), corner, 0.1) or near_segment(dx, dy, corner, (0.42, -0.38), 0.1)


def arrow_down(dx, dy):
    shaft = abs(dx) < 0.1 and -0.45 < dy < 0.1
    head = 0.0 <= dy < 0.45 and abs(dx) < 0.4 * (0.45 - dy) / 0.45
    return shaft or head


def bin_can(dx, dy):
    body = -0.28 < dx < 0.28 and -0.2 < dy < 0.45
    hollow = -0.16 < dx < 0.16 and -0.2 < dy < 0.33
    lid = abs(dx) < 0.4 and -0.36 < dy < -0.26
    handle = abs(dx) < 0.1 and -0.45 < dy < -0.36
    return (body and not hollow) or lid or handle or (abs(dx) < 0.04 and -0.1 < dy < 0.25)


def hourglass(dx, dy):
    glass = abs(dy) < 0.4 and abs(dx) < 0.05 + 0.3 * abs(dy) / 0.4
    bars = 0.36 < abs(dy) < 0.47 and abs(dx) < 0.38
    return glass or bars


def magnifier(dx, dy):
    r = ((dx + 0.1) ** 2 + (dy + 0.1) ** 2) ** 0.5
    ring = 0.17 < r < 0.3
    along = (dx + dy) / 2 ** 0.5
    across = (dx - dy) / 2 ** 0.5
    handle = abs(across) < 0.08 and 0.2 < along < 0.6
    return ring or handle


def cross(dx, dy):
    dy -= 0.05
    inside = abs(dx) < 0.36 and abs(dy) < 0.36
    return inside and (abs(dx - dy) < 0.13 or abs(dx + dy) < 0.13)


# Each task's colour and sign: what it does, at a glance in the task catalog.
TASKS = {
    'CosignInstallerV1': ((0, 105, 255, 255), arrow_down),  # install
    'DoRegistryGarbageCollectionV1': ((0, 140, 130, 255), bin_can),  # garbage collection
    'DoRegistryGcWaitV1': ((200, 120, 0, 255), hourglass),  # the guard waits
    'CosignV1': ((20, 140, 60, 255), check_mark),  # sign and verify
    'RegistryTagCheckV1': ((110, 60, 190, 255), magnifier),  # look before building
    'RegistryCleanupV1': ((190, 40, 40, 255), cross),  # remove what a failed run pushed
}


def shield_png(path, size, sign, bg, fg=WHITE, scale=0.85):
    rows = []
    c = size / 2
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            dx = (x - c + 0.5) / c
            dy = (y - c + 0.5) / c
            inside = abs(dx) < 0.8 and dy > -0.8 and (dy < 0.1 or dx * dx + (dy - 0.1) ** 2 < 0.64)
            rim = inside and (abs(dx) > 0.6 or dy < -0.6 or (dy >= 0.1 and dx * dx + (dy - 0.1) ** 2 > 0.36))
            mark = sign(dx / scale, dy / scale) and (scale == 1 or (inside and not rim))
            row += bytes(fg if (rim or mark) else (bg if inside else (0, 0, 0, 0)))
        rows.append(bytes(row))

    def chunk(tag, data):
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xffffffff)

    png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', size, size, 8, 6, 0, 0, 0))
    png += chunk(b'IDAT', zlib.compress(b''.join(rows), 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(png)


shield_png(os.path.join(ROOT, 'images', 'extension-icon.png'), 128, check_mark, (0, 105, 255, 255), scale=1)
tasks = os.path.join(ROOT, 'tasks')
for name in sorted(os.listdir(tasks)):
    if not os.path.exists(os.path.join(tasks, name, 'task.json')):
        continue
    if name not in TASKS:
        raise SystemExit(f'make-icons: no colour and sign for {name}; add it to TASKS')
    bg, sign = TASKS[name]
    shield_png(os.path.join(tasks, name, 'icon.png'), 32, sign, bg)
