mesatee-policy-sig-v1
zz yy
