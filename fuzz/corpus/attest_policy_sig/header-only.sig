mesatee-policy-sig-v1
