/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* ABI between usdt_count.bpf.c and its loaders: fixed-size types only, no includes. */
#ifndef __USDT_COUNT_H
#define __USDT_COUNT_H

/* one slot per attached probe; the slot is the attachment's USDT cookie */
#define USDT_COUNT_MAX 64

#endif /* __USDT_COUNT_H */
