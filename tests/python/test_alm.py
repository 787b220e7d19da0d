# SPDX-License-Identifier: Apache-2.0
import os
import struct
import tempfile
import unittest

import numpy as np

import _paths  # noqa: F401
from almtools import alm

META = {"name": "t", "labels": "normal,abnormal", "input_size": "4x3", "channels": "gray",
        "scale": "255", "mean": "0.5", "std": "0.25", "resize": "stretch",
        "output": "softmax", "threshold": "0.5", "description": "", "metric.auc": "0.9"}
GRAPH = ["Input input 0 1 data c=1 h=3 w=4",
         "Conv c1 1 1 data c1 cout=2 k=3,3 p=1,1,1,1 w=c1.weight b=c1.bias act=relu",
         "GlobalAvgPool gap 1 1 c1 gap",
         "Gemm fc 1 1 gap fc n=2 w=fc.weight"]


def tensors():
    rng = np.random.default_rng(3)
    return {"c1.weight": rng.normal(size=(2, 1, 3, 3)).astype(np.float32),
            "c1.bias": rng.normal(size=2).astype(np.float32),
            "fc.weight": rng.normal(size=(2, 2)).astype(np.float32)}


class AlmTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def test_round_trip_f32(self):
        t = tensors()
        alm.write_alm(self.path("a.alm"), META, GRAPH, t)
        meta, graph, back = alm.read_alm(self.path("a.alm"))
        self.assertEqual(list(meta.items()), list(META.items()))
        self.assertEqual(graph, GRAPH)
        self.assertEqual(list(back), list(t))
        for k in t:
            np.testing.assert_array_equal(back[k], t[k])

    def test_round_trip_f16(self):
        t = tensors()
        alm.write_alm(self.path("a.alm"), META, GRAPH, t, dtype="f16")
        _, _, back = alm.read_alm(self.path("a.alm"))
        for k in t:
            np.testing.assert_array_equal(back[k], t[k].astype(np.float16).astype(np.float32))

    def test_deterministic(self):
        alm.write_alm(self.path("a.alm"), META, GRAPH, tensors())
        alm.write_alm(self.path("b.alm"), dict(META), list(GRAPH), tensors())
        with open(self.path("a.alm"), "rb") as a, open(self.path("b.alm"), "rb") as b:
            self.assertEqual(a.read(), b.read())

    def test_layout(self):
        data = alm.alm_bytes(META, GRAPH, tensors())
        self.assertEqual(data[:4], b"ALM1")
        self.assertEqual(struct.unpack_from("<III", data, 4), (1, 4, 0))
        names = []
        for i in range(4):
            base = 16 + 32 * i
            names.append(data[base:base + 16].rstrip(b"\0").decode())
            offset, size = struct.unpack_from("<QQ", data, base + 16)
            if names[-1] == "weights":
                self.assertEqual(offset % 64, 0)
                self.assertEqual(offset + size, len(data))
        self.assertEqual(names, ["meta", "graph", "tensors", "weights"])
        table = alm.read_sections(data)["tensors"].decode()
        for line in table.splitlines():
            self.assertEqual(int(line.split()[3]) % 64, 0, line)

    def test_reader_rejects_corruption(self):
        data = alm.alm_bytes(META, GRAPH, tensors())
        with self.assertRaisesRegex(alm.AlmError, "magic"):
            alm.read_alm(b"XLM1" + data[4:])
        with self.assertRaisesRegex(alm.AlmError, "outside"):
            alm.read_alm(data[:-8])
        with self.assertRaisesRegex(alm.AlmError, "version"):
            alm.read_alm(data[:4] + struct.pack("<I", 2) + data[8:])

    def test_writer_rejects_bad_meta(self):
        with self.assertRaises(alm.AlmError):
            alm.alm_bytes({"a\nb": "1"}, GRAPH, tensors())


if __name__ == "__main__":
    unittest.main()
