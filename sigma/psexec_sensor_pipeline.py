"""pySigma processing pipeline: SigmaHQ's `zeek` logsource onto psexec-sensor's `--log-dir` logs.

The sensor's logs keep Zeek's names (`_path`, `ts`, `uid`, `id.orig_h` ..., and each log's own
columns: `path`, `name`, `endpoint`, `operation`, `named_pipe` ...), so fields need no mapping:
the pipeline only says where each Zeek service lives, one table (or index) per log named like the
log file (`smb_files.log` -> `smb_files`), and refuses rules for Zeek logs the sensor does not
write, rather than turning them into queries that can never match.

    from sigma.backends.sqlite import sqliteBackend
    from psexec_sensor_pipeline import psexec_sensor_zeek_pipeline
    sqliteBackend(psexec_sensor_zeek_pipeline()).convert(rules)

For a SIEM that keeps every Zeek log in one index with a `_path` (or `event.dataset`) field, pass
`one_table="zeek"`: rules then get a `_path = '<service>'` condition instead of a table each.
"""

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    RuleFailureTransformation,
    SetStateTransformation,
)

# Zeek services (SigmaHQ `logsource: {product: zeek, service: ...}`) the sensor writes, one log
# each. Keep in step with LOG_SCHEMAS in src/event/zeek.rs (tests/outputs.rs checks).
SERVICES = (
    "smb_mapping",
    "smb_files",
    "dce_rpc",
    "ntlm",
    "kerberos",
    "smb_visibility",
    "conn",
    "notice",
    "weird",
)


def psexec_sensor_zeek_pipeline(one_table: str | None = None) -> ProcessingPipeline:
    items = []
    for service in SERVICES:
        cond = [LogsourceCondition(product="zeek", service=service)]
        if one_table is None:
            transformation = SetStateTransformation("table", service)
        else:
            transformation = AddConditionTransformation({"_path": service})
        items.append(
            ProcessingItem(
                identifier=f"psexec_sensor_zeek_{service}",
                transformation=transformation,
                rule_conditions=cond,
            )
        )
    if one_table is not None:
        items.append(
            ProcessingItem(
                identifier="psexec_sensor_zeek_table",
                transformation=SetStateTransformation("table", one_table),
                rule_conditions=[LogsourceCondition(product="zeek")],
            )
        )
    items.append(
        ProcessingItem(
            identifier="psexec_sensor_zeek_unsupported",
            transformation=RuleFailureTransformation(
                "psexec-sensor does not write this Zeek log"
            ),
            rule_conditions=[LogsourceCondition(product="zeek", service=s) for s in SERVICES],
            rule_condition_linking=any,
            rule_condition_negation=True,
        )
    )
    return ProcessingPipeline(
        name="psexec-sensor Zeek logs",
        priority=20,
        items=items,
        allowed_backends=frozenset(),
    )
