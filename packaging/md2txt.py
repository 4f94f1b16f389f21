#!/usr/bin/env python3
"""docs/imconf.md -> the plain-text README of the package, in the shape of Kamailio's module
READMEs: a table of contents, numbered sections ("3.1. min_expires (int)"), code indented, tables
as aligned columns, links written out. Standard library only.

    python3 packaging/md2txt.py docs/imconf.md > README
"""
import re
import sys
import textwrap


def inline(text):
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", lambda m: m.group(1) if m.group(1) == m.group(2)
                  else "%s (%s)" % (m.group(1), m.group(2)), text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\1", text)
    return text.replace("`", "")


def table(rows):
    cells = [[inline(c.strip()) for c in r.strip().strip("|").split("|")] for r in rows
             if not re.match(r"^\s*\|?[\s:|-]+\|?\s*$", r)]
    n = max(len(r) for r in cells)
    cells = [r + [""] * (n - len(r)) for r in cells]
    # the last column wraps; the others are padded to their width (capped)
    widths = [min(max(len(r[i]) for r in cells), 28) for i in range(n - 1)]
    col = sum(widths) + 2 * (n - 1)          # where the last column starts
    out = []
    for j, r in enumerate(cells):
        head = "  ".join(c.ljust(w) for c, w in zip(r, widths))
        last = wrap(r[-1], max(30, 73 - col)) or [""]
        if n > 1 and len(head.rstrip()) > col - 2:
            # a first cell wider than its column: on its own line(s), the last column below it
            out += ["   " + l for l in wrap(head.rstrip(), 73)]
            out += ["   " + " " * col + l for l in last]
        else:
            out.append("   " + (head + "  " if n > 1 else "") + last[0])
            out += ["   " + " " * col + l for l in last[1:]]
        if j == 0:
            out.append("   " + "-" * 73)
    return out


def wrap(text, width):
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def convert(md):
    lines = md.splitlines()
    title = inline(lines[0].lstrip("# ").strip()) if lines and lines[0].startswith("# ") else "imconf"
    body, toc, numbers = [], [], [0, 0, 0]
    current, examples = [], 0          # the headings above this line; code blocks so far
    i = 1 if lines and lines[0].startswith("# ") else 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            i += 1
            examples += 1
            name = re.sub(r"\s*\(.*$", "", current[-1]) if current else "imconf"
            if len(current) > 1 and current[0] == "Parameters":
                label = "Set %s parameter" % name
            elif len(current) > 1:
                label = "%s usage" % name
            else:
                label = name
            if line.strip() == "```lua":
                label += " (KEMI, Lua)"
            body += ["", "   Example 1.%d. %s" % (examples, label)]
            while i < len(lines) and not lines[i].startswith("```"):
                body.append("     " + lines[i].replace("\t", "    ") if lines[i].strip() else "")
                i += 1
            body.append("")
        elif re.match(r"^#{2,4} ", line):
            level = len(line.split(" ", 1)[0]) - 2
            numbers[level] += 1
            for k in range(level + 1, 3):
                numbers[k] = 0
            num = ".".join(str(n) for n in numbers[:level + 1]) + "."
            title = inline(line.split(" ", 1)[1].strip())
            current = current[:level] + [title]
            text = "%s %s" % (num, title)
            toc.append("   " * (level + 1) + text)
            body += ["", text] + (["", ] if level else ["=" * len(text), ""])
        elif line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            body += table(rows)
            continue
        elif re.match(r"^\s*([-*]|\d+\.) ", line):
            # a list item and its continuation lines
            m = re.match(r"^(\s*)([-*]|\d+\.) (.*)$", line)
            item = [m.group(3)]
            i += 1
            while i < len(lines) and lines[i].strip() and not re.match(r"^\s*([-*]|\d+\.) ", lines[i]) \
                    and not lines[i].startswith(("#", "```", "|")):
                item.append(lines[i].strip())
                i += 1
            pad = "   " + " " * len(m.group(1))
            bullet = "* " if m.group(2) in "-*" else m.group(2) + " "
            wrapped = wrap(inline(" ".join(item)), 76 - len(pad) - len(bullet)) or [""]
            body.append(pad + bullet + wrapped[0])
            body += [pad + " " * len(bullet) + l for l in wrapped[1:]]
            continue
        elif line.strip():
            para = [line.strip()]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "```", "|")) \
                    and not re.match(r"^\s*([-*]|\d+\.) ", lines[i]):
                para.append(lines[i].strip())
                i += 1
            body += ["   " + l for l in wrap(inline(" ".join(para)), 73)]
            continue
        else:
            body.append("")
        i += 1
    out = [title, "", "   Generated from docs/imconf.md; the same text in markdown is imconf.md.", "",
           "   " + "_" * 70, "", "   Table of Contents", ""] + toc + [""] + body
    text = "\n".join(l.rstrip() for l in out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read()))
