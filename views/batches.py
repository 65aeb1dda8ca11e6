"""批量业务管理 → 批量业务: past uploads of the user's scope with their results."""
from __future__ import annotations

from flask_admin.contrib.sqla.filters import FilterEqual

from models import BatchKind, BatchStatus, ImportBatch

from . import roles as access
from .base import ScopedModelView


class BatchView(ScopedModelView):
    roles = frozenset(access.UNIT | access.AGENCY | access.MANAGERS)
    export_roles = access.BUSINESS
    column_list = ["created_at", "kind", "file_name", "user", "org", "status", "total_rows", "ok_rows",
                   "error_rows", "created_rows"]
    column_labels = {"created_at": "上传时间", "kind": "业务类型", "file_name": "文件名", "user": "上传人",
                     "org": "单位", "status": "状态", "total_rows": "总行数", "ok_rows": "校验通过",
                     "error_rows": "失败", "created_rows": "已办理", "sha256": "文件指纹", "size": "文件大小",
                     "message": "说明", "checked_at": "校验时间", "processed_at": "办理时间", "params": "参数",
                     "result_path": "结果文件"}
    column_filters = [FilterEqual(ImportBatch.kind, "业务类型", options=BatchKind.choices()),
                      FilterEqual(ImportBatch.status, "状态", options=BatchStatus.choices())]
    column_default_sort = ("id", True)
