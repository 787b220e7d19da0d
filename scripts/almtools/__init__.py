# SPDX-License-Identifier: Apache-2.0
"""Python tools for Anomalens .alm models: container I/O, preprocessing, reference forward."""
