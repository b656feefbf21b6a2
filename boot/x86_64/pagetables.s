; Identity page tables: the first IDENTITY_MAP_GIB GiB with 2 MiB pages, so
; RAM, ACPI tables, ECAM and firmware below 4 GiB are all reachable.
.code32

; page_tables_build: PML4[0] -> PDPT; PDPT[i] -> page directory i; page
; directory entries map consecutive 2 MiB pages from physical address 0.
; Inputs: none.  Clobbers: EAX, ECX, EDX, EDI.
page_tables_build:
    mov edi, PAGE_TABLES
    mov ecx, PAGE_TABLES_DWORDS
    xor eax, eax
    cld
    rep stosd
    mov dword ptr [PML4], PDPT + PTE_TABLE_FLAGS
    mov edi, PDPT
    mov eax, PAGE_DIRECTORIES + PTE_TABLE_FLAGS
    mov ecx, IDENTITY_MAP_GIB
page_tables_pdpt_entry:
    mov [edi], eax
    add eax, PAGE_TABLE_SIZE
    add edi, 8
    dec ecx
    jnz page_tables_pdpt_entry
    mov edi, PAGE_DIRECTORIES
    mov eax, PTE_LARGE_PAGE_FLAGS           ; EDX:EAX = entry (physical address + flags)
    xor edx, edx
    mov ecx, PAGE_DIRECTORY_ENTRIES
page_tables_pd_entry:
    mov [edi], eax
    mov [edi + 4], edx
    add eax, LARGE_PAGE_SIZE
    adc edx, 0
    add edi, 8
    dec ecx
    jnz page_tables_pd_entry
    ret
