"""The two texts every inspection package carries: ``VERIFY.md`` and ``SUMMARY.txt``."""

from __future__ import annotations

from importlib import metadata
from typing import Any

_VERIFY = """\
# Verifying this Custos inspection package

This package holds the records of one plant for one period, exported by a
named user. It proves its own integrity: you need this folder (or zip file),
the Custos software and the plant's published key fingerprint. You do not
need access to the plant.

## 1. Install

This package was written by Custos {version}. Install that version (or a
later one) on any computer with Python 3.11 or later, from the distribution
the plant or its vendor gives you, for example:

    python -m pip install custos-{version}-py3-none-any.whl

## 2. Check the package

    hmi verify --package PATH_TO_THIS_FOLDER_OR_ZIP \\
        --expect-fingerprint FINGERPRINT_PUBLISHED_BY_THE_PLANT

The command prints one line starting with `OK` and exits with status 0, or
prints `FAILED` and one line per problem (naming the file, table and
sequence number) and exits with status 1.

## 3. What each check means

* **Files**: every file listed in `manifest.json` is present with its size
  and SHA-256, and no file is present that the manifest does not list. A
  changed cell in a CSV, a deleted Parquet row, an altered image, an added
  or removed file all fail here.
* **Manifest signature**: `manifest.sig` is an Ed25519 signature over the
  exact bytes of `manifest.json`, made with the plant's checkpoint signing
  key. It must verify with `keys/checkpoint-signing.pub`. Editing the
  manifest to match an altered file breaks the signature.
* **Key fingerprint**: the command prints the public key's fingerprint
  (SHA-256 of the raw Ed25519 public key, first 32 hex digits; the same key
  ID every checkpoint names). Compare it with the fingerprint the plant
  publishes, or pass it with `--expect-fingerprint` to make it a check.
* **Checkpoints**: every signed checkpoint in `checkpoints/` (and its copy in
  `checkpoints/anchors.log`) verifies with the public key. A checkpoint
  lists the last row (sequence number and digest) of every record chain.
* **Chains**: in each `chains/<table>.parquet` the sequence numbers run
  without a gap over the exported range, and each row a checkpoint vouches
  for has exactly the digest the checkpoint signed.
* **Tag history**: the values in `chains/tag_history_values.parquet` hash,
  batch by batch, to the SHA-256 each chained history batch row holds.
* **Images**: each file in `images/` is named by its SHA-256, its content
  has that SHA-256, and a capture record in the package names it.
* **Views**: the row counts of each `views/<view>.csv` and `.parquet`
  equal the counts in the manifest.
* **Integrity at export**: the plant checked the exported records before
  writing the package. If that check failed, the manifest and `SUMMARY.txt`
  say FAILED and this command fails too.

A holder of the plant's secret HMAC key (the plant's QA) can also recompute
every exported record chain from the raw rows:

    hmi verify --package PATH --keys PLANT_KEYS_DIRECTORY

## 4. What the fingerprint comparison proves, and what it does not

A matching fingerprint proves the package was signed with the key the plant
published: nobody without that key changed any file after export. It does
not prove the plant's records were complete or truthful when exported:
whoever holds the signing key could write and sign a different package.
That is why the plant publishes the fingerprint separately and keeps copies
of its checkpoints (the anchor file) apart from the database: an inspector
can ask for the plant's anchor file and compare its checkpoints with
those in this package.

## 5. What is in the package

| path | content |
|---|---|
| `manifest.json` | what, when, by whom; every file's size and SHA-256; per chain its range |
| `manifest.sig` | Ed25519 signature (hex) over `manifest.json` |
| `keys/checkpoint-signing.pub` | the public key (PEM) |
| `checkpoints/` | the signed checkpoints covering the period and the next one after it |
| `views/` | every QA view for the period, as CSV and Parquet |
| `chains/` | the raw chained rows, with sequence numbers and digests |
| `images/` | the images the period's captures name |
| `reports/` | reports added by the plant |
| `SUMMARY.txt` | the period, who exported, counts, integrity result |
"""


def verify_text() -> str:
    """VERIFY.md, naming the Custos version that wrote the package."""
    try:
        version = metadata.version("custos")
    except metadata.PackageNotFoundError:
        version = "(unknown version)"
    return _VERIFY.format(version=version)


def summary_text(manifest: dict[str, Any]) -> str:
    """A plain summary of the package for a person reading it first."""
    integrity = manifest["integrity"]
    period = manifest["period"]
    generated = manifest["generated"]
    verdict = "OK" if integrity["ok"] else "FAILED - THE RECORDS DID NOT VERIFY AT EXPORT"
    lines = [
        "Custos inspection package",
        f"Plant: {manifest['plant']}",
        f"Period: from {period['from']} to {period['to']} (end excluded)",
        f"Exported: {generated['at']} by {generated['by_name']} ({generated['by_id']})",
        f"Checkpoint signing key fingerprint: {manifest['public_key_fingerprint']}",
        "",
        f"Integrity at export: {verdict}",
        *(f"  {line}" for line in integrity["problems"]),
        *(f"  {line}" for line in integrity["checked"]),
        "",
        "Views (rows in the period):",
        *(f"  {name}: {v['rows']}" for name, v in sorted(manifest["views"].items())),
        "",
        "Record chains (raw rows exported):",
        *(
            f"  {name}: seq {c['first_seq']}..{c['last_seq']} ({c['rows']} rows)"
            if c["rows"]
            else f"  {name}: no records in the period"
            for name, c in sorted(manifest["chains"].items())
        ),
        "",
        f"Signed checkpoints: {len(manifest['checkpoints'])}",
        f"Images: {manifest['images']}",
        f"Reports: {len(manifest['reports'])}",
        "",
        "Check this package with `hmi verify --package` (see VERIFY.md).",
    ]
    return "\n".join(lines) + "\n"
