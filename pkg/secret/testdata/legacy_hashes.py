import json, django
from django.conf import settings
settings.configure(PASSWORD_HASHERS=[
 'django.contrib.auth.hashers.PBKDF2PasswordHasher',
 'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher',
 'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',
 'django.contrib.auth.hashers.BCryptPasswordHasher',
 'django.contrib.auth.hashers.Argon2PasswordHasher'])
django.setup()
from django.contrib.auth.hashers import make_password, get_hasher
from passlib.hash import pbkdf2_sha256, pbkdf2_sha512, pbkdf2_sha1, bcrypt as pbcrypt, argon2 as pargon2
import argon2
pw = "correct horse battery staple"
out = []
def add(src, h, weak): out.append({"source": src, "hash": h, "password": pw, "weak": weak})
for alg in ['pbkdf2_sha256','pbkdf2_sha1','bcrypt_sha256','bcrypt','argon2']:
    h = make_password(pw, hasher=alg)
    add("django 3.2 make_password "+alg, h, alg in ('pbkdf2_sha256','pbkdf2_sha1','argon2'))
# strong django pbkdf2
h = get_hasher('pbkdf2_sha256').encode(pw, 'saltsaltsalt1234', 600000); add("django pbkdf2_sha256 600000", h, False)
add("passlib pbkdf2_sha256 default", pbkdf2_sha256.hash(pw), True)
add("passlib pbkdf2_sha256 600000", pbkdf2_sha256.using(rounds=600000).hash(pw), False)
add("passlib pbkdf2_sha512 default", pbkdf2_sha512.hash(pw), False)
add("passlib pbkdf2_sha1", pbkdf2_sha1.hash(pw), True)
add("passlib bcrypt 2b", pbcrypt.using(rounds=12).hash(pw), False)
add("passlib bcrypt 2a cost 8", pbcrypt.using(rounds=8, ident="2a").hash(pw), True)
add("passlib bcrypt 2y", pbcrypt.using(rounds=10, ident="2y").hash(pw), False)
add("argon2-cffi default", argon2.PasswordHasher().hash(pw), False)
add("argon2-cffi tiny memory", argon2.PasswordHasher(memory_cost=1024, time_cost=1, parallelism=1).hash(pw), True)
add("passlib argon2id", pargon2.using(type="ID").hash(pw), False)
add("non-ascii argon2-cffi", argon2.PasswordHasher().hash("ﬁnal pass wörd"), False); out[-1]["password"]="ﬁnal pass wörd"
json.dump(out, open("/tmp/vec/vectors.json","w"), indent=1, ensure_ascii=False)
import hashlib, base64, bcrypt as cb
for o in out:
    if o["source"]=="django 3.2 make_password argon2": o["weak"]=False
    if o["source"]=="passlib pbkdf2_sha512 default": o["weak"]=True
def b64(b): return base64.b64encode(b).decode().rstrip("=")
salt=b"0123456789abcdef"
dk=hashlib.pbkdf2_hmac("sha256", pw.encode(), salt, 600000, 32)
add("PHC pbkdf2-sha256 i=,l= (hashlib.pbkdf2_hmac)", "$pbkdf2-sha256$i=600000,l=32$%s$%s"%(b64(salt),b64(dk)), False)
dk=hashlib.pbkdf2_hmac("sha512", pw.encode(), salt, 210000, 64)
add("PHC pbkdf2-sha512 i=,l= (hashlib.pbkdf2_hmac)", "$pbkdf2-sha512$i=210000,l=64$%s$%s"%(b64(salt),b64(dk)), False)
long = "x"*80
add("python bcrypt 2b, 80-byte password (bcrypt uses its first 72)", cb.hashpw(long.encode(), cb.gensalt(10)).decode(), False); out[-1]["password"]=long
import subprocess
h=subprocess.check_output(["htpasswd","-nbB","-C","10","u",pw]).decode().strip().split(":",1)[1]
add("htpasswd -B -C 10", h, False)
json.dump(out, open("/tmp/vec/vectors.json","w"), indent=1, ensure_ascii=False)
