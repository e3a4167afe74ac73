#!/usr/bin/python3
"""Writes sheet.xlsx with openpyxl (Debian: python3-openpyxl) from the
distro-info-data CSV files: one sheet per file."""
import csv, sys
from openpyxl import Workbook

wb = Workbook()
wb.remove(wb.active)
for name in ("debian", "ubuntu"):
    ws = wb.create_sheet(name)
    with open(f"/usr/share/distro-info/{name}.csv", newline="") as f:
        for row in csv.reader(f):
            ws.append(row)
wb.save(sys.argv[1] if len(sys.argv) > 1 else "sheet.xlsx")
