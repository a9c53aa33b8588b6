# A function that uses a KeyStore key its owner approved: the task argument
# python_key ("OWNER/NAME") names the key; the key's owner must take part in
# the task (and so approves this code and that argument). The function hashes
# another party's document and has the key sign it; only the signature leaves.
# The private key is in the worker process that runs this code: approve only
# code you trust with it (docs/python-functions.md, "KeyStore keys").
import hashlib
import mesatee


def entrypoint(argv):
    doc = mesatee.open_input("document").read()
    sig = mesatee.key_sign(doc)
    mesatee.log("signed a document of %d bytes, sha256 %s" % (len(doc), hashlib.sha256(doc).hexdigest()))
    return sig.hex()
