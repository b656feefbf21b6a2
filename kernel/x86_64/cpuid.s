; CPUID: every leaf of the basic, hypervisor, extended and Centaur ranges, each with
; the subleaves its rule (generated table cpuid_rules, from cpuid_rules.py)
; names; one CPUID frame per (leaf, subleaf) result, registers raw.
.code64

; cpuid_send_all: basic leaves, hypervisor leaves (when CPUID.1:ECX says a
; hypervisor is present), extended leaves, Centaur leaves (0xC0000000: a CPU
; without them answers with a maximum below the base, so that leaf goes alone).
; Clobbers: as frame_send.
cpuid_send_all:
    push rbx
    xor edi, edi
    call cpuid_send_range
    mov eax, 1
    xor ecx, ecx
    cpuid
    test ecx, CPUID_1_ECX_HYPERVISOR
    jz cpuid_no_hypervisor
    mov edi, CPUID_HYPERVISOR_BASE
    call cpuid_send_range
cpuid_no_hypervisor:
    mov edi, CPUID_EXTENDED_BASE
    call cpuid_send_range
    mov edi, CPUID_CENTAUR_BASE
    call cpuid_send_range
    pop rbx
    ret

; cpuid_send_range: leaves base..last, last = EAX of the base leaf, kept
; within base..base+CPUID_RANGE_LIMIT (a range the CPU lacks gives base only).
; Inputs: EDI = base leaf.  Clobbers: as frame_send.
cpuid_send_range:
    push rbx
    push r12
    mov r12d, edi
    mov eax, edi
    xor ecx, ecx
    cpuid
    mov ebx, eax
    cmp ebx, r12d
    jae cpuid_range_above_base
    mov ebx, r12d
cpuid_range_above_base:
    lea eax, [r12 + CPUID_RANGE_LIMIT]
    cmp ebx, eax
    jbe cpuid_range_leaf
    mov ebx, eax
cpuid_range_leaf:
    mov edi, r12d
    call cpuid_send_leaf
    inc r12d
    cmp r12d, ebx
    jbe cpuid_range_leaf
    pop r12
    pop rbx
    ret

; cpuid_send_leaf: the leaf's subleaves by its rule (subleaf 0 alone if none).
; Inputs: EDI = leaf.  Clobbers: as frame_send.
cpuid_send_leaf:
    push rbx
    push r12
    push r13
    push r14
    mov r12d, edi
    mov rbx, cpuid_rules
cpuid_rule_find:
    mov rax, cpuid_rules_end
    cmp rbx, rax
    jae cpuid_rule_none
    cmp dword ptr [rbx + CPUID_RULE_LEAF], r12d
    je cpuid_rule_found
    add rbx, CPUID_RULE_SIZE
    jmp cpuid_rule_find
cpuid_rule_none:
    mov edi, r12d
    xor esi, esi
    call cpuid_query
    call cpuid_result_send
    jmp cpuid_leaf_done
cpuid_rule_found:
    movzx eax, byte ptr [rbx + CPUID_RULE_KIND]
    cmp eax, CPUID_KIND_MAX_IN_REGISTER
    je cpuid_max_in_register
    cmp eax, CPUID_KIND_UNTIL_FIELD_ZERO
    je cpuid_until_field_zero
    cmp eax, CPUID_KIND_BITMAP
    je cpuid_bitmap
    jmp cpuid_nonzero

; Subleaves 0..N, N = the rule's field of subleaf 0 (at most CPUID_MAX_SUBLEAF).
cpuid_max_in_register:
    mov edi, r12d
    xor esi, esi
    call cpuid_query
    call cpuid_rule_field
    mov r13d, eax
    cmp r13d, CPUID_MAX_SUBLEAF
    jbe cpuid_max_known
    mov r13d, CPUID_MAX_SUBLEAF
cpuid_max_known:
    call cpuid_result_send
    mov r14d, 1
cpuid_max_next:
    cmp r14d, r13d
    ja cpuid_leaf_done
    mov edi, r12d
    mov esi, r14d
    call cpuid_query
    call cpuid_result_send
    inc r14d
    jmp cpuid_max_next

; Subleaves 0, 1, ... until the rule's field reads 0 (that one included);
; the first ALWAYS subleaves are not tested.
cpuid_until_field_zero:
    xor r14d, r14d
cpuid_until_next:
    mov edi, r12d
    mov esi, r14d
    call cpuid_query
    call cpuid_result_send
    movzx eax, byte ptr [rbx + CPUID_RULE_ALWAYS]
    cmp r14d, eax
    jb cpuid_until_continue
    call cpuid_rule_field
    test eax, eax
    jz cpuid_leaf_done
cpuid_until_continue:
    inc r14d
    cmp r14d, CPUID_MAX_SUBLEAF
    jbe cpuid_until_next
    jmp cpuid_leaf_done

; Subleaf 0, then subleaf i for each bit i >= 1 set in the rule's field of subleaf 0.
cpuid_bitmap:
    mov edi, r12d
    xor esi, esi
    call cpuid_query
    call cpuid_rule_field
    mov r13d, eax
    call cpuid_result_send
    mov r14d, 1
cpuid_bitmap_next:
    bt r13d, r14d
    jnc cpuid_bitmap_continue
    mov edi, r12d
    mov esi, r14d
    call cpuid_query
    call cpuid_result_send
cpuid_bitmap_continue:
    inc r14d
    cmp r14d, CPUID_BITMAP_LAST_BIT
    jbe cpuid_bitmap_next
    jmp cpuid_leaf_done

; Subleaves 0..CPUID_MAX_SUBLEAF: the first ALWAYS, then those not all zero.
cpuid_nonzero:
    xor r14d, r14d
cpuid_nonzero_next:
    mov edi, r12d
    mov esi, r14d
    call cpuid_query
    movzx eax, byte ptr [rbx + CPUID_RULE_ALWAYS]
    cmp r14d, eax
    jb cpuid_nonzero_send
    mov rdi, FRAME_BODY
    mov eax, dword ptr [rdi + CPUID_EAX]
    or eax, dword ptr [rdi + CPUID_EBX]
    or eax, dword ptr [rdi + CPUID_ECX]
    or eax, dword ptr [rdi + CPUID_EDX]
    jz cpuid_nonzero_continue
cpuid_nonzero_send:
    call cpuid_result_send
cpuid_nonzero_continue:
    inc r14d
    cmp r14d, CPUID_MAX_SUBLEAF
    jbe cpuid_nonzero_next

cpuid_leaf_done:
    pop r14
    pop r13
    pop r12
    pop rbx
    ret

; cpuid_query: runs CPUID and writes leaf, subleaf and EAX..EDX into the body.
; Inputs: EDI = leaf, ESI = subleaf.  Clobbers: RAX, RCX, RDX, R8.
cpuid_query:
    push rbx
    mov eax, edi
    mov ecx, esi
    cpuid
    mov r8, FRAME_BODY
    mov dword ptr [r8 + CPUID_LEAF], edi
    mov dword ptr [r8 + CPUID_SUBLEAF], esi
    mov dword ptr [r8 + CPUID_EAX], eax
    mov dword ptr [r8 + CPUID_EBX], ebx
    mov dword ptr [r8 + CPUID_ECX], ecx
    mov dword ptr [r8 + CPUID_EDX], edx
    pop rbx
    ret

; cpuid_rule_field: (register >> shift) & mask of the result in the body, with
; register, shift and mask from the rule.  EAX..EDX are consecutive in the body.
; Inputs: RBX = rule.  Outputs: EAX.  Clobbers: RCX, RDX.
cpuid_rule_field:
    movzx edx, byte ptr [rbx + CPUID_RULE_REGISTER]
    mov rax, FRAME_BODY
    mov eax, dword ptr [rax + rdx*4 + CPUID_EAX]
    movzx ecx, byte ptr [rbx + CPUID_RULE_SHIFT]
    shr eax, cl
    and eax, dword ptr [rbx + CPUID_RULE_MASK]
    ret

; cpuid_result_send: sends the body cpuid_query filled.  Clobbers: as frame_send.
cpuid_result_send:
    mov edi, MSG_CPUID
    mov esi, CPUID_SIZE
    jmp frame_send
