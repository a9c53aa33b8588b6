"""The ctypes signature table of libmesatee: every C function the SDK calls,
with its return and argument types spelled as in src/client/mesatee.h
(normalised: single spaces, '*' bound to the name side, parameter names
dropped, arrays as "T [N]").

This module is pure data and does not load the library: tools/check_sigs.py
(run by the build and by ctest `py_sdk_sigs`) compares it with the header and
fails, naming the function, when they differ; it also fails when the header
declares a function that is neither here nor in NOT_WRAPPED. The ctypes types
are derived from these C spellings by CTYPES only (mesatee/_lib.py), so the
table checked is the table used."""
from typing import Dict, List, Tuple

CL = "mesatee_client *"
CCL = "const mesatee_client *"
S = "const char *"
OUT = "char **"
KEY = "const uint8_t [32]"

SIGNATURES: Dict[str, Tuple[str, List[str]]] = {
    "mesatee_status_name": ("const char *", ["int"]),
    "mesatee_version": ("const char *", []),
    "mesatee_key_bytes": ("size_t", []),
    "mesatee_id_chars": ("size_t", []),
    "mesatee_free": ("void", ["void *"]),
    # client handle
    "mesatee_client_new": ("mesatee_client *", [S]),
    "mesatee_client_free": ("void", [CL]),
    "mesatee_client_set_ca_file": ("int", [CL, S]),
    "mesatee_client_set_tls_server_name": ("int", [CL, S]),
    "mesatee_client_set_insecure_skip_verify": ("int", [CL, "int"]),
    "mesatee_client_set_verify_hostname": ("int", [CL, "int"]),
    "mesatee_client_set_policy_file": ("int", [CL, S]),
    "mesatee_client_set_policy_signers": ("int", [CL, S, "unsigned"]),
    "mesatee_client_attest": ("int", [CL, OUT]),
    "mesatee_client_set_token": ("int", [CL, S]),
    "mesatee_client_token": ("const char *", [CCL]),
    "mesatee_client_set_timeout": ("int", [CL, "long"]),
    "mesatee_client_set_wait_reconnect": ("int", [CL, "long"]),
    "mesatee_client_errmsg": ("const char *", [CCL]),
    "mesatee_client_errcode": ("int", [CCL]),
    "mesatee_client_http_status": ("int", [CCL]),
    # calls
    "mesatee_call": ("int", [CL, S, S, S, OUT]),
    "mesatee_login": ("int", [CL, S, S, OUT, OUT]),
    "mesatee_logout": ("int", [CL, OUT]),
    "mesatee_user_add": ("int", [CL, S, S, S, OUT]),
    "mesatee_whoami": ("int", [CL, OUT]),
    "mesatee_builtins": ("int", [CL, OUT]),
    "mesatee_upload_file": ("int", [CL, S, OUT, OUT]),
    "mesatee_file_register_input": ("int", [CL, S, KEY, S, S, OUT, OUT]),
    "mesatee_file_register_output_ex": ("int", [CL, KEY, S, "unsigned", OUT, OUT]),
    "mesatee_file_register_fusion": ("int", [CL, "const char *const *", "size_t", S, OUT, OUT]),
    "mesatee_file_download_ex": ("int", [CL, S, S, "unsigned"]),
    "mesatee_function_register": ("int", [CL, S, OUT, OUT]),
    "mesatee_task_create": ("int", [CL, S, OUT, OUT]),
    "mesatee_task_assign": ("int", [CL, S, S, OUT]),
    "mesatee_task_approve": ("int", [CL, S, OUT]),
    "mesatee_task_invoke": ("int", [CL, S, OUT]),
    "mesatee_task_cancel": ("int", [CL, S, OUT]),
    "mesatee_task_get": ("int", [CL, S, OUT]),
    "mesatee_task_wait": ("int", [CL, S, "long", "char [16]", OUT]),
    "mesatee_list_all": ("int", [CL, S, S, OUT]),
    # keys and files (no server)
    "mesatee_key_generate": ("int", ["uint8_t [32]"]),
    "mesatee_key_to_hex": ("void", [KEY, "char [65]"]),
    "mesatee_key_from_hex": ("int", [S, "uint8_t [32]"]),
    "mesatee_key_write_file": ("int", [KEY, S]),
    "mesatee_key_read_file": ("int", [S, "uint8_t [32]"]),
    "mesatee_file_encrypt": ("int", [KEY, S, S]),
    "mesatee_file_decrypt": ("int", [KEY, S, S]),
    "mesatee_file_decrypt_output": ("int", [KEY, S, S, S, S, S, "unsigned"]),
    "mesatee_task_output_download": ("int", [CL, S, S, S, KEY, S, "unsigned"]),
    "mesatee_file_sha256": ("int", [S, "char [65]"]),
}

# Declared in mesatee.h, intentionally not wrapped (with the reason).
NOT_WRAPPED: Dict[str, str] = {
    "mesatee_client_set_progress": "progress callbacks: not exposed (no ctypes callbacks)",
    "mesatee_user_show": "admin/user lifecycle: Client.call('GET', '/v1/users/NAME')",
    "mesatee_user_change_password": "user lifecycle: Client.call",
    "mesatee_user_reset_password": "admin: Client.call or the CLI",
    "mesatee_user_disable": "admin: Client.call or the CLI",
    "mesatee_user_enable": "admin: Client.call or the CLI",
    "mesatee_user_delete": "admin: Client.call or the CLI",
    "mesatee_upload_bytes": "upload_file streams from disk; bytes go through a file",
    "mesatee_file_register_output": "the _ex form is used (allow_key_reuse)",
    "mesatee_file_download": "the _ex form is used (allow_unbound)",
    "mesatee_audit_list": "audit: Client.call('GET', '/v1/audit')",
    "mesatee_audit_checkpoint": "audit: the CLI verifies checkpoints",
    "mesatee_list_page": "mesatee_list_all is used (lists are returned whole)",
    "mesatee_file_list": "struct ABI: lists come as JSON through mesatee_list_all",
    "mesatee_file_get_info": "struct ABI: Client.files.info uses GET /v1/files/{id}",
    "mesatee_file_info_free": "struct ABI (see mesatee_file_list)",
    "mesatee_function_list": "struct ABI: JSON through mesatee_list_all",
    "mesatee_function_get_info": "struct ABI: Client.functions.get",
    "mesatee_function_info_free": "struct ABI (see mesatee_function_list)",
    "mesatee_task_list": "struct ABI: JSON through mesatee_list_all",
    "mesatee_task_get_info": "struct ABI: Client.tasks.get (mesatee_task_get)",
    "mesatee_task_info_free": "struct ABI (see mesatee_task_list)",
    "mesatee_transit_key_create": "KeyStore transit: Vault-compatible, use hvac",
    "mesatee_transit_key_read": "KeyStore transit: use hvac",
    "mesatee_transit_key_list": "KeyStore transit: use hvac",
    "mesatee_transit_key_delete": "KeyStore transit: use hvac",
    "mesatee_transit_key_rotate": "KeyStore transit: use hvac",
    "mesatee_transit_key_config": "KeyStore transit: use hvac",
    "mesatee_transit_key_import": "KeyStore transit: use hvac",
    "mesatee_transit_grant": "KeyStore transit: Client.call",
    "mesatee_transit_revoke": "KeyStore transit: Client.call",
    "mesatee_transit_encrypt": "KeyStore transit: use hvac",
    "mesatee_transit_decrypt": "KeyStore transit: use hvac",
    "mesatee_transit_sign": "KeyStore transit: use hvac",
    "mesatee_transit_verify": "KeyStore transit: use hvac",
    "mesatee_transit_random": "KeyStore transit: use hvac",
    "mesatee_transit_public_key": "KeyStore transit: use hvac",
    "mesatee_transit_decode": "KeyStore transit: use hvac",
}

# C spelling -> name of the ctypes type (resolved in _lib.py). Buffers that C
# writes ("uint8_t [32]", "char [65]") are passed as ctypes string buffers.
CTYPE_NAMES: Dict[str, str] = {
    "void": "None",
    "void *": "c_void_p",
    "int": "c_int",
    "long": "c_long",
    "unsigned": "c_uint",
    "size_t": "c_size_t",
    "const char *": "c_char_p",
    "char **": "POINTER(c_void_p)",
    "char [16]": "c_char_p",
    "char [65]": "c_char_p",
    "const char *const *": "POINTER(c_char_p)",
    "mesatee_client *": "c_void_p",
    "const mesatee_client *": "c_void_p",
    "const uint8_t [32]": "c_char_p",
    "uint8_t [32]": "c_char_p",
}


def ctype_known(c_type: str) -> bool:
    return c_type in CTYPE_NAMES
