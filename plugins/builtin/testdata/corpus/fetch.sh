#!/usr/bin/env bash
# Gathers the extraction-quality corpus from Debian packages and writes the
# reference tools' output next to it:
#   DIR/pdf/*.pdf   PDFs shipped in documentation packages (pdfTeX, xdvipdfmx,
#                   LibreOffice, cairo) plus man pages typeset by groff's
#                   gropdf and by Ghostscript's ps2pdf
#   DIR/html/*.html pages shipped in documentation packages (texinfo, Sphinx,
#                   Doxygen, groff, hand-written)
#   DIR/docx/*.docx written by pandoc from those pages and from Markdown
#   DIR/ref/<format>/<name>.txt   pdftotext / pandoc -t plain output
#   DIR/large/*.pdf large PDFs: four R manuals joined by pdfunite (442 pages,
#                   about 2.5 MB) and Octave's manual (1158 pages, 4.7 MB)
# Usage: fetch.sh [DIR]   (default: $DOCEX_CORPUS or ~/.cache/docex-corpus)
# Needs apt-get (root), dpkg-deb; installs poppler-utils, pandoc, groff and
# ghostscript if missing. Re-running reuses the downloaded packages.
set -euo pipefail
dir=${1:-${DOCEX_CORPUS:-$HOME/.cache/docex-corpus}}
mkdir -p "$dir"/{debs,x,pdf,html,docx,large,ref/pdf,ref/html,ref/docx}
dir=$(cd "$dir" && pwd)

need=()
for t in pdftotext:poppler-utils pandoc:pandoc gropdf:groff ps2pdf:ghostscript; do
	command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

pkgs=(r-doc-pdf asymptote-doc gnuplot-doc debian-policy maint-guide developers-reference doxygen-doc
	octave-doc cups-filters ghostscript-doc sbcl-doc groff-base fonts-sil-charis)
cd "$dir/debs"
for p in "${pkgs[@]}"; do
	ls "${p}"_*.deb >/dev/null 2>&1 || apt-get download -qq "$p" 2>/dev/null
done
for d in *.deb; do dpkg-deb -x "$d" "$dir/x"; done
x="$dir/x/usr/share"

# PDFs, by producer.
pdfs=(
	R/doc/manual/R-intro.pdf R/doc/manual/R-data.pdf R/doc/manual/R-FAQ.pdf R/doc/manual/R-lang.pdf
	R/doc/manual/R-admin.pdf R/doc/manual/R-ints.pdf doc/asymptote/TeXShopAndAsymptote.pdf doc/octave/refcard-letter.pdf
	doc/asymptote/asymptote.pdf doc/asymptote/asy-latex.pdf doc/asymptote/CAD.pdf doc/asymptote/asyRefCard.pdf
	doc/gnuplot/gnuplot.pdf doc/doxygen/doxygen_manual.pdf doc/octave/liboctave.pdf doc/octave/refcard-a4.pdf
	developers-reference/developers-reference.pdf doc/ghostscript/GS9_Color_Management.pdf
	doc/maint-guide/maint-guide.en.pdf
	cups/data/default-testpage.pdf cups/data/form_english.pdf
)
for p in "${pdfs[@]}"; do cp -f "$x/$p" "$dir/pdf/"; done
R="$x/R/doc/manual"
pdfunite "$R/R-intro.pdf" "$R/R-exts.pdf" "$R/R-data.pdf" "$R/R-FAQ.pdf" "$dir/large/R-manuals-442p.pdf"
cp -f "$x/doc/octave/octave.pdf" "$dir/large/octave-1158p.pdf"
# groff (gropdf) and Ghostscript (ps2pdf) typeset Debian's own man pages.
for m in bash.1 dpkg.1 apt-get.8; do
	src=$(man -w "${m%.*}" 2>/dev/null || true)
	[ -n "$src" ] || continue
	zcat -f "$src" | groff -Tpdf -man -P-pa4 > "$dir/pdf/gropdf-${m}.pdf" 2>/dev/null || rm -f "$dir/pdf/gropdf-${m}.pdf"
	zcat -f "$src" | groff -Tps -man | ps2pdf - "$dir/pdf/gs-${m}.pdf" 2>/dev/null || rm -f "$dir/pdf/gs-${m}.pdf"
done

# HTML pages, by producer: the first pages (sorted) of each manual.
pick() { # dir count
	find "$1" -maxdepth 1 -type f -name '*.html' -size +3k | LC_ALL=C sort | head -n "$2"
}
n=0
for src in "$x/doc/octave/octave.html:4" "$x/doc/gnuplot/htmldocs:4" "$x/doc/asymptote/html:3" \
	"$x/doc/debian-policy/policy.html:4" "$x/doc/doxygen/html:3" \
	"$x/doc/ghostscript/html:3" "$x/doc/sbcl/sbcl-internals:2"; do
	for f in $(pick "${src%:*}" "${src##*:}"); do
		n=$((n + 1))
		base=$(basename "$(dirname "$f")")-$(basename "$f")
		cp -f "$f" "$dir/html/$base"
	done
done

# DOCX written by pandoc from Markdown and HTML sources.
for f in $(find "$x/doc/fonts-sil-charis" -name '*.md' -size +2k | LC_ALL=C sort | head -n 5); do
	pandoc -f markdown -t docx -o "$dir/docx/charis-$(basename "${f%.md}").docx" "$f"
done
for f in $(ls "$dir"/html/*.html | LC_ALL=C sort | awk 'NR % 3 == 1' | head -n 7); do
	pandoc -f html -t docx -o "$dir/docx/$(basename "${f%.html}").docx" "$f" 2>/dev/null
done

# References.
for f in "$dir"/pdf/*.pdf; do pdftotext -enc UTF-8 "$f" "$dir/ref/pdf/$(basename "$f").txt"; done
for f in "$dir"/html/*.html; do pandoc -s -f html -t plain --wrap=none -o "$dir/ref/html/$(basename "$f").txt" "$f" 2>/dev/null; done
for f in "$dir"/docx/*.docx; do pandoc -s -f docx -t plain --wrap=none -o "$dir/ref/docx/$(basename "$f").txt" "$f"; done
echo "corpus in $dir: $(ls "$dir/pdf" | wc -l) PDF, $(ls "$dir/html" | wc -l) HTML, $(ls "$dir/docx" | wc -l) DOCX"
