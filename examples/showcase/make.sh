#!/usr/bin/env bash
# Rebuilds the showcase documents (make demo, README "Showcase") from their
# sources with common tools, as a user's documents would be made:
#   ticket.pdf      groff -ms typeset by gropdf
#   invoice.pdf     groff -ms to PostScript, converted by Ghostscript's ps2pdf
#   onboarding.docx pandoc from Markdown
#   claim.docx      pandoc from Markdown
# Every name, address, phone, card and bank number in them is fictitious
# (reserved example domains and IP ranges, drama phone ranges, the standard
# test card and IBAN numbers). Needs groff, ghostscript and pandoc (Debian:
# apt-get install groff ghostscript pandoc). SOURCE_DATE_EPOCH pins the
# dates the tools record.
set -euo pipefail
cd "$(dirname "$0")"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200}
groff -ms -Tpdf -P-pa4 ticket.ms > ticket.pdf
groff -ms -Tps -P-pa4 invoice.ms | ps2pdf -sPAPERSIZE=a4 - invoice.pdf
pandoc -s onboarding.md -o onboarding.docx
pandoc -s claim.md -o claim.docx
ls -l ticket.pdf invoice.pdf onboarding.docx claim.docx
